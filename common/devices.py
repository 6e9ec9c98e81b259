"""Devices: the CPU threads MXNet uses, the CPU's instruction sets, and the ``-g`` option's GPU
list."""
import functools
import os

from common.errors import UserError


def use_all_cores():
    """Let MXNet's OpenMP kernels use every core this process may run on.

    Left alone, MXNet 1.9 runs its CPU kernels on half the cores (one of two here), which
    doubles inference time. An OMP_NUM_THREADS set by the user is respected.
    """
    if 'OMP_NUM_THREADS' not in os.environ:
        os.environ['OMP_NUM_THREADS'] = str(len(os.sched_getaffinity(0)))


@functools.lru_cache(maxsize=None)
def cpu_flags(cpuinfo='/proc/cpuinfo'):
    """The instruction-set flags of the CPU ('avx2', 'avx512f', ...); empty where the system
    does not list them (only Linux does, in /proc/cpuinfo)."""
    try:
        with open(cpuinfo) as f:
            for line in f:
                if line.startswith('flags'):
                    return frozenset(line.split(':', 1)[1].split())
    except OSError:
        pass
    return frozenset()


def parse_devices(spec):
    """'' -> [cpu()]; '0,1' -> [gpu(0), gpu(1)] (the CLIs' ``-g`` option)."""
    import mxnet as mx   # here: use_all_cores must run before MXNet loads
    spec = (spec or '').strip()
    if not spec:
        return [mx.cpu()]
    try:
        ids = [int(s) for s in spec.split(',')]
    except ValueError:
        ids = [-1]
    if min(ids) < 0 or len(set(ids)) != len(ids):
        raise UserError("-g %s: expected distinct comma-separated GPU ids such as '0' or '0,1'"
                        % spec)
    if mx.context.num_gpus() < max(ids) + 1:
        raise UserError('-g %s: this machine has %d usable GPU(s) in this MXNet build; '
                        'install mxnet-cu112 (see README) or drop -g to run on the CPU'
                        % (spec, mx.context.num_gpus()))
    return [mx.gpu(i) for i in ids]
