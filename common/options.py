"""Parsing of option values shared by the command lines."""
from common.errors import UserError

SIZE_MULTIPLE = 64   # network inputs must be a multiple of the coarsest stride (px)
# MXNet 1.9's BilinearResize2D keeps sizes in 16 bits: 32768 fails and 70000 silently becomes
# 4464. The largest multiple of 64 below 32768 bounds --resize, images and video frames.
MAX_SIDE_PX = (2 ** 15 - 1) // SIZE_MULTIPLE * SIZE_MULTIPLE   # 32704
# The default of predict_new_data.py's --batch (video frame pairs per network call) by device
# type: the original's 8 on GPUs, 2 on the CPU (see docs/performance.md, "Video batch"). Here
# so that --help can show it without loading MXNet.
DEFAULT_VIDEO_BATCH = {'gpu': 8, 'cpu': 2}
# Seeds (--seed, a run's drawn one): MXNet seeds with a C int.
MAX_SEED = 2 ** 31 - 1


def check_seed(seed):
    """UserError unless ``--seed`` is one MXNet takes."""
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise UserError('--seed %d: must be from 0 to %d' % (seed, MAX_SEED))


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
    check_side('--resize %s' % given, size)
    return size


def check_side(what, shape):
    """Raise UserError unless ``shape`` (H, W, ...) of ``what`` (an image, a frame, --resize)
    is small enough for the network."""
    height, width = shape[:2]
    if max(height, width) > MAX_SIDE_PX:
        raise UserError('%s: %dx%d is too large: at most %d px per side (MXNet cannot resize to '
                        '32768 or more)' % (what, width, height, MAX_SIDE_PX))
