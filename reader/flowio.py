"""Read and write every flow and image file format the project uses.

Flows are float32 H x W x 2 arrays holding (u, v) = (x, y) displacements in pixels.
Any problem with a file raises ``UserError`` with a one-line message that names the file.
Writers are atomic (``common.files.atomic_output``): an interrupted run never leaves a
half-written output.
"""
import contextlib
import os
import re
import tempfile
import threading
import zlib

import cv2
import flow_vis
import numpy as np

from common.errors import UserError
from common.files import atomic_output, output_name

FLO_MAGIC = 202021.25
FLOW_OUTPUT_EXTENSIONS = ('.flo', '.npy', '.png', '.jpg', '.jpeg')
IMAGE_OUTPUT_EXTENSIONS = ('.png', '.jpg', '.jpeg')
_MAX_DIM = 1 << 20  # far beyond any real frame; catches garbage headers early
_HEADER_LIMIT = 4096  # PPM headers are tiny; never scan a whole payload for one
_HEADER_TOKEN = re.compile(rb'(?:\s|#[^\n]*\n)*([^\s#]+)')  # skips whitespace and '# comments'


def _ext(path):
    return os.path.splitext(os.fspath(path))[1].lower()


def _check_extension(path, allowed, what):
    ext = _ext(path)
    if ext not in allowed:
        raise UserError(f"{os.fspath(path)}: unsupported {what} extension '{ext}' "
                        f"(supported: {', '.join(allowed)})")
    return ext


def _require_file(path):
    if not os.path.isfile(path):
        problem = 'not a regular file' if os.path.exists(path) else 'file not found'
        raise UserError(f'{path}: {problem}')
    return os.fspath(path)


def _read_bytes(path):
    path = _require_file(path)
    try:
        with open(path, 'rb') as f:
            return f.read()
    except OSError as e:
        raise UserError(f'{path}: cannot read ({e.strerror or e})') from e


def _check_dims(path, width, height):
    if not (0 < width <= _MAX_DIM and 0 < height <= _MAX_DIM):
        raise UserError(f'{path}: invalid image size {width}x{height} in header')


def _check_payload(path, what, actual, expected):
    if actual != expected:
        problem = 'truncated' if actual < expected else 'has trailing bytes'
        raise UserError(f'{path}: {what} payload {problem} ({actual} bytes, expected {expected})')


def _header_tokens(path, data, count):
    """Return the first `count` header tokens of a PPM file and the payload offset."""
    head, tokens, pos = data[:_HEADER_LIMIT], [], 0
    for _ in range(count):
        match = _HEADER_TOKEN.match(head, pos)
        if match is None or match.end() >= len(head):
            raise UserError(f'{path}: malformed or truncated header')
        tokens.append(match.group(1))
        pos = match.end()
    if not head[pos:pos + 1].isspace():  # Netpbm: exactly one whitespace byte ends the header
        raise UserError(f'{path}: malformed header (no whitespace after {tokens[-1]!r})')
    return tokens, pos + 1


def _parse_number(path, token, kind):
    try:
        return kind(token)
    except ValueError:
        raise UserError(f'{path}: malformed header (bad number {token!r})') from None


def _check_flow(flow):
    flow = np.asarray(flow)
    if flow.ndim != 3 or flow.shape[2] != 2 or flow.shape[0] == 0 or flow.shape[1] == 0:
        raise ValueError(f'flow must have shape (H, W, 2), got {flow.shape}')
    return flow


def _write_chunks(tmp, chunks):
    with open(tmp, 'wb') as f:
        f.writelines(chunks)


_JPEG_START = b'\xff\xd8\xff'
_JPEG_END = b'\xff\xd9'
_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


def _jpeg_is_complete(data):
    """Whether the end-of-image marker follows the first scan (libjpeg only warns without it)."""
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return True  # not a marker: corrupt rather than cut short; OpenCV judges that
        marker = data[pos + 1]
        if marker == 0xFF:  # a fill byte
            pos += 1
        elif marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            pos += 2
        elif marker == 0xD9:
            return True  # no scan at all: OpenCV refuses it
        elif marker == 0xDA:  # start of scan: entropy-coded data never holds FF D9 (stuffing)
            return data.find(_JPEG_END, pos + 2) != -1
        else:  # a segment with a length; an EXIF thumbnail's own FF D9 is skipped inside it
            pos += 2 + int.from_bytes(data[pos + 2:pos + 4], 'big')
    return False


def _png_problem(data):
    """None for a whole PNG file, else what is wrong: 'truncated' (it ends before its IEND
    chunk does) or 'corrupt' (a chunk's CRC does not match, or bytes follow IEND)."""
    if not data.startswith(_PNG_SIGNATURE):
        return 'corrupt (no PNG signature)'
    pos = len(_PNG_SIGNATURE)
    while pos + 12 <= len(data):
        length, kind = int.from_bytes(data[pos:pos + 4], 'big'), data[pos + 4:pos + 8]
        end = pos + 12 + length   # length, type, data, CRC
        if end > len(data):
            return 'truncated'
        if zlib.crc32(data[pos + 4:end - 4]) != int.from_bytes(data[end - 4:end], 'big'):
            return 'corrupt (CRC mismatch in its %s chunk)' % kind.decode('latin-1')
        if kind == b'IEND':
            return None if end == len(data) else 'corrupt (%d bytes after its end)' % (len(data) - end)
        pos = end
    return 'truncated'


def _png_is_complete(data):
    return _png_problem(data) is None


def _flo_is_complete(data):
    """Whether a .flo file holds exactly the bytes its header announces."""
    if len(data) < 12 or np.frombuffer(data, '<f4', 1)[0] != FLO_MAGIC:
        return False
    width, height = (int(x) for x in np.frombuffer(data, '<i4', 2, offset=4))
    return width > 0 and height > 0 and len(data) == 12 + 8 * width * height


def output_is_complete(path):
    """Whether ``path`` (.flo or .png) is a whole file, not a truncated or corrupt one.

    Checked without decoding, so that libpng prints nothing about the files it rejects.
    """
    check = _flo_is_complete if _ext(path) == '.flo' else _png_is_complete
    try:
        with open(path, 'rb') as f:
            return check(f.read())
    except OSError:
        return False


def _check_complete(path, data):
    """UserError for a JPEG or PNG file cut short (libjpeg decodes what is there, grey after)
    or, for a PNG, damaged (its chunks carry CRCs)."""
    if data.startswith(_JPEG_START) and not _jpeg_is_complete(data):
        raise UserError(f'{path}: truncated JPEG file (it ends before the image does)')
    if data.startswith(_PNG_SIGNATURE):
        problem = _png_problem(data)
        if problem == 'truncated':
            raise UserError(f'{path}: truncated PNG file (it ends before the image does)')
        if problem:
            raise UserError(f'{path}: {problem} PNG file')


_stderr_lock = threading.Lock()


@contextlib.contextmanager
def decoder_messages():
    """Collect what native decoders print inside the block; yields a list that holds their
    lines afterwards.

    libjpeg decodes a damaged scan with a grey or garbage fill and only prints a warning
    ('Corrupt JPEG data: ...') on standard error; ffmpeg conceals a damaged video frame and
    logs an error, which OpenCV prints on standard output. Both descriptors (1 and 2) are the
    whole process's, so the blocks of all threads take turns; what other threads print
    meanwhile is collected too, and shown with the decoder's lines.
    """
    import sys
    lines = []
    with _stderr_lock, tempfile.TemporaryFile() as capture:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = [os.dup(1), os.dup(2)]
        try:
            os.dup2(capture.fileno(), 1)
            os.dup2(capture.fileno(), 2)
            try:
                yield lines
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
        finally:
            for fd in saved:
                os.close(fd)
        capture.seek(0)
        lines.extend(line.strip() for line in capture.read().decode(errors='replace').splitlines()
                     if line.strip())


def _imread(path, flags):
    """Read the file once: check that it is complete, then decode those same bytes. A JPEG
    whose decoder warns (a damaged scan) is refused with the decoder's words."""
    path = _require_file(path)
    data = _read_bytes(path)
    _check_complete(path, data)
    buffer = np.frombuffer(data, np.uint8)
    guard = decoder_messages() if data.startswith(_JPEG_START) else contextlib.nullcontext([])
    with guard as messages:
        try:
            image = cv2.imdecode(buffer, flags)
        except cv2.error:
            image = None
    if image is None:
        raise UserError(f'{path}: cannot decode image (corrupt or unsupported format)')
    if messages:
        raise UserError(f'{path}: damaged image (the decoder says: {"; ".join(messages)[:300]})')
    return image


def _imwrite(path, image, suffix):
    with atomic_output(path, suffix) as tmp:
        problem = f'{output_name(path)}: OpenCV could not write the image'
        try:
            written = cv2.imwrite(tmp, image)
        except cv2.error as e:
            raise UserError(f"{problem} ({' '.join(str(e).split())[-200:]})") from None
        if not written:
            raise UserError(problem)


def read_flo(path):
    """Read a Middlebury .flo file into an (H, W, 2) float32 array."""
    data = _read_bytes(path)
    if len(data) < 12:
        raise UserError(f'{path}: not a .flo file (only {len(data)} bytes)')
    magic = np.frombuffer(data, '<f4', 1)[0]
    if magic != FLO_MAGIC:
        raise UserError(f'{path}: not a .flo file (bad magic number {magic})')
    width, height = (int(x) for x in np.frombuffer(data, '<i4', 2, offset=4))
    _check_dims(path, width, height)
    _check_payload(path, '.flo', len(data) - 12, 8 * width * height)
    return np.frombuffer(data, '<f4', offset=12).reshape(height, width, 2).astype(np.float32)


def write_flo(path, flow):
    """Write an (H, W, 2) flow as a Middlebury .flo file."""
    flow = _check_flow(flow)
    height, width = flow.shape[:2]
    header = np.array([FLO_MAGIC], '<f4').tobytes() + np.array([width, height], '<i4').tobytes()
    with atomic_output(path) as tmp:
        _write_chunks(tmp, [header, flow.astype('<f4').tobytes()])


def read_kitti_flow_png(path):
    """Read a KITTI 16-bit flow PNG; return (flow (H, W, 2) float32, valid (H, W) bool).

    Invalid pixels keep whatever flow the file stores there.
    """
    image = _imread(path, cv2.IMREAD_UNCHANGED)
    if image.dtype != np.uint16 or image.ndim != 3 or image.shape[2] != 3:
        raise UserError(f'{path}: not a KITTI flow PNG (expected 16-bit 3-channel, '
                        f'got {image.dtype} with shape {image.shape})')
    flow = (image[..., 2:0:-1].astype(np.float32) - 32768) / 64  # BGR: channel 2 is u
    return flow, image[..., 0] > 0


def write_kitti_flow_png(path, flow, valid=None):
    """Write a KITTI 16-bit flow PNG; values are rounded to 1/64 px and clamped like the devkit.

    `valid` defaults to all ones; non-finite flow is written as 0 and marked invalid.
    """
    flow = _check_flow(flow).astype(np.float64)
    finite = np.isfinite(flow).all(axis=2)
    valid = np.ones(flow.shape[:2], bool) if valid is None else np.asarray(valid) > 0
    if valid.shape != flow.shape[:2]:
        raise ValueError(f'valid must have shape {flow.shape[:2]}, got {valid.shape}')
    flow = np.where(finite[..., None], flow, 0)
    encoded = np.clip(np.round(flow * 64 + 32768), 0, 65535).astype(np.uint16)
    bgr = np.dstack([(valid & finite).astype(np.uint16), encoded[..., 1], encoded[..., 0]])
    _imwrite(path, bgr, '.png')


def write_npy(path, array):
    """Save `array` to exactly `path` (np.save would append .npy to a bare name)."""
    with atomic_output(path) as tmp, open(tmp, 'wb') as f:
        np.save(f, np.asarray(array), allow_pickle=False)


def check_image_output_path(path):
    """Raise UserError now, before any work, if ``path`` is not a writable image kind."""
    return _check_extension(path, IMAGE_OUTPUT_EXTENSIONS, 'image')


def check_flow_output_path(path):
    """Raise UserError unless `path` has a flow output extension; return that extension."""
    return _check_extension(path, FLOW_OUTPUT_EXTENSIONS, 'flow output')


def write_flow(path, flow):
    """Write a flow as .flo, .npy, or a colour visualisation (.png/.jpg/.jpeg)."""
    ext = check_flow_output_path(path)
    flow = _check_flow(flow)
    if ext == '.flo':
        write_flo(path, flow)
    elif ext == '.npy':
        write_npy(path, flow)
    else:
        write_image(path, flow_vis.flow_to_color(flow, convert_to_bgr=False))


def read_ppm(path):
    """Read a binary P6 PPM (maxval 255) into an (H, W, 3) uint8 RGB array."""
    data = _read_bytes(path)
    tokens, offset = _header_tokens(path, data, 4)
    if tokens[0] != b'P6':
        raise UserError(f'{path}: not a binary PPM file (magic {tokens[0]!r})')
    width, height, maxval = (_parse_number(path, t, int) for t in tokens[1:])
    _check_dims(path, width, height)
    if maxval != 255:
        raise UserError(f'{path}: unsupported PPM maxval {maxval} (only 255)')
    _check_payload(path, 'PPM', len(data) - offset, 3 * width * height)
    return np.frombuffer(data, np.uint8, offset=offset).reshape(height, width, 3).copy()


def read_mask_png(path):
    """Read an 8-bit mask PNG (e.g. Sintel invalid/occlusions, {0, 255}) as (H, W) bool.

    FlyingChairs2 stores its masks as RGB with equal channels, so those are accepted too.
    """
    image = _imread(path, cv2.IMREAD_UNCHANGED)
    if image.dtype != np.uint8:
        raise UserError(f'{path}: mask must be an 8-bit image, got {image.dtype}')
    if image.ndim == 3:
        colour = image[..., :3]
        if not (colour == colour[..., :1]).all():
            raise UserError(f'{path}: mask has differing colour channels (not a grayscale mask)')
        image = colour[..., 0]
    return image > 0


def read_image(path):
    """Read an image as (H, W, 3) uint8 in OpenCV BGR order.

    Decoded with cv2.IMREAD_COLOR: grayscale becomes 3 equal channels, an alpha channel is
    dropped, 16-bit images are reduced to 8 bits and JPEG EXIF orientation is applied.
    `.ppm` files go through read_ppm, which checks the payload size strictly.
    """
    if _ext(path) == '.ppm':
        return np.ascontiguousarray(read_ppm(path)[..., ::-1])
    return _imread(path, cv2.IMREAD_COLOR)


def read_image_rgb(path):
    """Like read_image, but in RGB order."""
    if _ext(path) == '.ppm':
        return read_ppm(path)
    return np.ascontiguousarray(read_image(path)[..., ::-1])


def write_image(path, image_rgb):
    """Write an (H, W, 3) RGB or (H, W) grayscale uint8 image; format from the extension."""
    ext = check_image_output_path(path)
    image = np.asarray(image_rgb)
    if image.dtype != np.uint8 or image.shape[2:] not in ((), (3,)) or image.ndim not in (2, 3):
        raise ValueError(f'image must be uint8 (H, W, 3) or (H, W): {image.dtype} {image.shape}')
    if image.ndim == 3:
        image = np.ascontiguousarray(image[..., ::-1])  # OpenCV writes BGR
    _imwrite(path, image, ext)
