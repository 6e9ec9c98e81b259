"""Devices: the CPU threads MXNet uses, and the ``-g`` option's GPU list."""
import os

from common.errors import UserError


def use_all_cores():
    """Let MXNet's OpenMP kernels use every core this process may run on.

    Left alone, MXNet 1.9 runs its CPU kernels on half the cores (one of two here), which
    doubles inference time. An OMP_NUM_THREADS set by the user is respected.
    """
    if 'OMP_NUM_THREADS' not in os.environ:
        os.environ['OMP_NUM_THREADS'] = str(len(os.sched_getaffinity(0)))


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
