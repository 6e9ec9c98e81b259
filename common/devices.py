"""Devices: the CPU threads MXNet uses, how freed memory is kept, the CPU's instruction sets,
and the ``-g`` option's GPU list."""
import ctypes
import functools
import os

from common.errors import UserError


def prepare_process():
    """What the command-line tools do first, before MXNet loads: use_all_cores and
    keep_freed_memory."""
    use_all_cores()
    keep_freed_memory()


def use_all_cores():
    """Let MXNet's OpenMP kernels use every core this process may run on.

    Left alone, MXNet 1.9 runs its CPU kernels on half the cores (one of two here), which
    doubles inference time. An OMP_NUM_THREADS set by the user is respected.
    """
    if 'OMP_NUM_THREADS' not in os.environ:
        os.environ['OMP_NUM_THREADS'] = str(len(os.sched_getaffinity(0)))


# glibc's mallopt options
M_TRIM_THRESHOLD, M_MMAP_MAX, M_ARENA_MAX = -1, -4, -8


def keep_freed_memory():
    """Let this process reuse the memory MXNet frees instead of handing it back to the system.

    MXNet takes every CPU array from malloc, and glibc serves large blocks by mapping fresh
    pages and unmapping them on free (per thread arena, too): each forward pass touches all of
    its arrays as new memory (docs/performance.md, "Process set-up"). One arena, no mapped
    blocks and no trimming keep freed blocks in the heap for the next pass; the process's
    memory stays at its peak instead of falling back. Call it before MXNet starts its threads
    (each thread would take its own arena). Returns whether the C library took the settings
    (glibc does; elsewhere it is a no-op).
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    settings = ((M_ARENA_MAX, 1), (M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, 2 ** 31 - 1))
    return all([mallopt(option, value) == 1 for option, value in settings])


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
    import mxnet as mx   # here: prepare_process must run before MXNet loads
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
                        'install mxnet-cu112 (see docs/install_gpu.md) or drop -g to run on the CPU'
                        % (spec, mx.context.num_gpus()))
    return [mx.gpu(i) for i in ids]
