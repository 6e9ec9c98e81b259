"""Process set-up that must happen before MXNet is imported."""
import os


def use_all_cores():
    """Let MXNet's OpenMP kernels use every core this process may run on.

    Left alone, MXNet 1.9 runs its CPU kernels on half the cores (one of two here), which
    doubles inference time. An OMP_NUM_THREADS set by the user is respected.
    """
    if 'OMP_NUM_THREADS' not in os.environ:
        os.environ['OMP_NUM_THREADS'] = str(len(os.sched_getaffinity(0)))
