"""Parsing of option values shared by the command lines."""
from common.errors import UserError

SIZE_MULTIPLE = 64   # network inputs must be a multiple of the coarsest stride (px)
# MXNet 1.9's BilinearResize2D keeps sizes in 16 bits: 32768 fails and 70000 silently becomes
# 4464. The largest multiple of 64 below 32768 bounds --resize, images and video frames.
MAX_SIDE_PX = (2 ** 15 - 1) // SIZE_MULTIPLE * SIZE_MULTIPLE   # 32704
# Video frame pairs per network call by device type (two batches are held in memory): the
# original's 8 on GPUs; on the CPU 2, as fast per pair there (bench/bench_video.py) with 1.1
# instead of 2.8 GB at 436 x 1024.
DEFAULT_VIDEO_BATCH = {'gpu': 8, 'cpu': 2}


def parse_resize(spec):
    """'H,W' -> (H, W), both positive multiples of 64 up to 32704; None/'' -> None (the next multiple)."""
    if spec is None or spec == '':
        return None
    given = spec if isinstance(spec, str) else ','.join(map(str, spec))
    try:
        size = tuple(int(s) for s in given.split(','))
    except ValueError:
        size = ()
    if len(size) != 2 or any(v <= 0 or v % SIZE_MULTIPLE for v in size):
        raise UserError('--resize %s: expected H,W with both positive multiples of %d, e.g. 448,1024'
                        % (given, SIZE_MULTIPLE))
    if max(size) > MAX_SIDE_PX:
        raise UserError('--resize %s: at most %d px per side (MXNet cannot resize to 32768 or more)'
                        % (given, MAX_SIDE_PX))
    return size
