"""Read and write every flow and image file format the project uses.

Flows are float32 H x W x 2 arrays holding (u, v) = (x, y) displacements in pixels. Ground
truth is read by extension (``read_flow``): Middlebury ``.flo``, ``.pfm`` (FlyingThings3D's),
KITTI's 16-bit ``.png`` with its valid bit, and ``.npy`` arrays. The sizes of images, flows and
masks can be read from their headers alone (``image_size``, ``flow_size``, ``png_header``), so
that a list of thousands of samples is checked in seconds before any work.
Any problem with a file raises ``UserError`` with a one-line message that names the file.
Writers are atomic (``common.files.atomic_output``): an interrupted run never leaves a
half-written output.
"""
import contextlib
import os
import re
import struct
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
FLOW_INPUT_EXTENSIONS = ('.flo', '.pfm', '.png', '.npy')   # ground truth, by read_flow
# What OpenCV decodes, for listing the frames of a folder.
IMAGE_INPUT_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.jpe', '.bmp', '.dib', '.ppm', '.pgm', '.pbm',
                          '.pnm', '.tif', '.tiff', '.webp', '.jp2', '.sr', '.ras')
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


def _head_and_size(path, count):
    """(path, its first ``count`` bytes, its size in bytes), for the header readers."""
    path = _require_file(path)
    try:
        with open(path, 'rb') as f:
            head = f.read(count)
        return path, head, os.path.getsize(path)
    except OSError as e:
        raise UserError(f'{path}: cannot read ({e.strerror or e})') from e


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


def _flo_is_complete(head, size):
    """Whether a .flo file of ``size`` bytes starting with ``head`` holds exactly the bytes its
    header announces."""
    if len(head) < 12 or np.frombuffer(head, '<f4', 1)[0] != FLO_MAGIC:
        return False
    width, height = (int(x) for x in np.frombuffer(head, '<i4', 2, offset=4))
    return width > 0 and height > 0 and size == 12 + 8 * width * height


def _npy_is_complete(path):
    """Whether a .npy file holds exactly the bytes its header announces."""
    try:
        _, payload, expected = _npy_header(path)
    except UserError:
        return False
    return payload == expected


def output_is_complete(path):
    """Whether ``path`` (.flo, .npy or .png) is a whole file, not a truncated or corrupt one.

    Checked without decoding, so that libpng prints nothing about the files it rejects.
    """
    if _ext(path) == '.npy':
        return os.path.isfile(path) and _npy_is_complete(path)
    try:
        with open(path, 'rb') as f:
            if _ext(path) == '.flo':   # its header and its length tell: no need to read it all
                return _flo_is_complete(f.read(12), os.fstat(f.fileno()).st_size)
            return _png_is_complete(f.read())
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


_capture_lock = threading.Lock()
_LIBPNG_LINE = re.compile(r'^libpng ')
_CODEC_LINE = re.compile(r'^(libpng |Corrupt JPEG|Premature end|JPEG|Not a JPEG|Empty JPEG)')
# What libjpeg says of damaged data (its warnings; it decodes on with a grey or garbage fill).
JPEG_DAMAGE = re.compile(r'^(Corrupt JPEG data|Premature end of JPEG file|Invalid JPEG file '
                         r'structure|Invalid SOS parameters|Inconsistent progression sequence|'
                         r'Bogus |Huffman|JPEG datastream)')


@contextlib.contextmanager
def decoder_messages(is_decoders=JPEG_DAMAGE.match, fds=(2,)):
    """Collect what native decoders print inside the block: yields a list that holds, after
    the block, the lines printed on the file descriptors ``fds`` for which ``is_decoders(line)``
    holds; every other line is written on to where it was going.

    libjpeg decodes a damaged scan with a grey or garbage fill and only prints a warning on
    standard error; ffmpeg conceals a damaged video frame and logs an error, which OpenCV
    prints on standard output. A descriptor is the whole process's, so the blocks of all
    threads take turns, and what another thread prints meanwhile arrives a moment later.
    """
    import sys
    with _capture_lock, contextlib.ExitStack() as stack:
        try:
            captures = [stack.enter_context(tempfile.TemporaryFile()) for _ in fds]
        except OSError as e:
            raise UserError(f'cannot make a temporary file to read the decoder\'s messages '
                            f'({e.strerror or e}); is the temporary folder full?') from None
        sys.stdout.flush()
        sys.stderr.flush()
        saved = [os.dup(fd) for fd in fds]
        lines = []
        try:
            for fd, capture in zip(fds, captures):
                os.dup2(capture.fileno(), fd)
            try:
                yield lines
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                for fd, original in zip(fds, saved):
                    os.dup2(original, fd)
        finally:
            for original in saved:
                os.close(original)
        for fd, capture in zip(fds, captures):
            capture.seek(0)
            others = []
            for line in capture.read().decode(errors='replace').splitlines(keepends=True):
                (lines if is_decoders(line.strip()) else others).append(line)
            if others:
                os.write(fd, ''.join(others).encode())
        lines[:] = [line.strip() for line in lines if line.strip()]


_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}   # by colour type


def _png_inflates_cleanly(data):
    """Whether a whole PNG's (``_check_complete``) pixel data inflates to exactly the rows its
    header announces, each with a valid filter type: then libpng decodes it without a word.
    False for an interlaced PNG or any doubt (decoding under capture decides)."""
    try:
        width, height, depth, colour, _, _, interlace = struct.unpack('>IIBBBBB', data[16:29])
        channels = _PNG_CHANNELS[colour]
        pos, idat = len(_PNG_SIGNATURE), []
        while pos + 8 <= len(data):
            length, kind = struct.unpack('>I4s', data[pos:pos + 8])
            if kind == b'IDAT':
                idat.append(data[pos + 8:pos + 8 + length])
            pos += 12 + length
        inflater = zlib.decompressobj()
        rows = inflater.decompress(b''.join(idat))
        if interlace or not inflater.eof or inflater.unused_data:
            return False
        stride = 1 + (width * channels * depth + 7) // 8
        if len(rows) != height * stride:
            return False
        return bool((np.frombuffer(rows, np.uint8)[::stride] <= 4).all())
    except (KeyError, struct.error, zlib.error):
        return False


def _imread(path, flags):
    """Read the file once: check that it is complete, then decode those same bytes. A JPEG
    whose decoder warns (a damaged scan) is refused with the decoder's words."""
    path = _require_file(path)
    data = _read_bytes(path)
    _check_complete(path, data)
    buffer = np.frombuffer(data, np.uint8)
    jpeg = data.startswith(_JPEG_START)
    if data.startswith(_PNG_SIGNATURE) and _png_inflates_cleanly(data):
        # Nothing for libpng to complain of: decoded without the capture, whose lock would
        # serialise the loader's threads (docs/performance.md, "Image decoding").
        image, messages = cv2.imdecode(buffer, flags), []
    else:
        # A JPEG's warnings are damage; libpng's lines come with its failures: they go into
        # the error line, not on the terminal before it.
        with decoder_messages(JPEG_DAMAGE.match if jpeg else _LIBPNG_LINE.match) as messages:
            try:
                image = cv2.imdecode(buffer, flags)
            except cv2.error:
                image = None
    if image is None:
        said = f'; the decoder says: {"; ".join(messages)[:300]}' if messages else ''
        raise UserError(f'{path}: cannot decode image (corrupt or unsupported format{said})')
    if messages and jpeg:
        raise UserError(f'{path}: damaged image (the decoder says: {"; ".join(messages)[:300]})')
    return image


def _imwrite(path, image, suffix):
    with atomic_output(path, suffix) as tmp:
        problem = f'{output_name(path)}: OpenCV could not write the image'
        with decoder_messages(_CODEC_LINE.match) as messages:   # libpng's 'Write Error', ...
            try:
                written = cv2.imwrite(tmp, image)
            except cv2.error as e:
                raise UserError(f"{problem} ({' '.join(str(e).split())[-200:]})") from None
        if not written:
            said = ' (the encoder says: %s; is the disk full?)' % '; '.join(messages)[:200] \
                if messages else ' (is the disk full?)'
            raise UserError(problem + said)


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


def _ppm_layout(path, data):
    """(height, width, payload offset) of a binary P6 PPM (maxval 255) whose pixels are all
    there; UserError otherwise."""
    tokens, offset = _header_tokens(path, data, 4)
    if tokens[0] != b'P6':
        raise UserError(f'{path}: not a binary PPM file (magic {tokens[0]!r})')
    width, height, maxval = (_parse_number(path, t, int) for t in tokens[1:])
    _check_dims(path, width, height)
    if maxval != 255:
        raise UserError(f'{path}: unsupported PPM maxval {maxval} (only 255)')
    _check_payload(path, 'PPM', len(data) - offset, 3 * width * height)
    return height, width, offset


def read_ppm(path):
    """Read a binary P6 PPM (maxval 255) into an (H, W, 3) uint8 RGB array."""
    data = _read_bytes(path)
    height, width, offset = _ppm_layout(path, data)
    return np.frombuffer(data, np.uint8, offset=offset).reshape(height, width, 3).copy()


def check_image_complete(path):
    """UserError, naming the file, unless the image file is whole, checked without decoding:
    a PNG's chunks all there with their CRCs and nothing after its end, a JPEG's end marker
    after its scan, a .ppm's header and all of its pixels. Damage inside a JPEG's scan and
    other formats are found when decoded. The cost is reading the file once."""
    data = _read_bytes(path)
    _check_complete(path, data)
    if _ext(path) == '.ppm':
        _ppm_layout(path, data)


def whole_image_size(path):
    """``image_size`` of an image that ``check_image_complete`` finds whole."""
    check_image_complete(path)
    return image_size(path)


def read_mask_png(path, sixteen_bit=False):
    """Read an 8-bit mask PNG (e.g. Sintel invalid/occlusions, {0, 255}) as (H, W) bool,
    True where non-zero. ``sixteen_bit``: 16-bit masks are read too (a custom list's VALID
    and OCC).

    FlyingChairs2 stores its masks as RGB with equal channels, so those are accepted too.
    """
    image = _imread(path, cv2.IMREAD_UNCHANGED)
    if image.dtype != np.uint8 and not (sixteen_bit and image.dtype == np.uint16):
        raise UserError(f'{path}: mask must be an 8-bit{" or 16-bit" if sixteen_bit else ""} '
                        f'image, got {image.dtype}')
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


# --- ground truth of any kind: .pfm, .npy and read_flow --------------------------------------

_PFM_HEADER = re.compile(rb'(PF|Pf)\s+(\d+)\s+(\d+)\s+([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s')
_READ_CHUNK = 1 << 22   # values per read when scanning a flow's payload (16 MB of float32)


def _pfm_header(path, head):
    """(channels, width, height, dtype, payload offset) of a PFM file from its first bytes."""
    match = _PFM_HEADER.match(head)
    if match is None:
        raise UserError(f'{path}: not a PFM file (malformed or truncated header)')
    channels = 3 if match.group(1) == b'PF' else 1
    width, height = int(match.group(2)), int(match.group(3))
    scale = float(match.group(4))
    if scale == 0:
        raise UserError(f'{path}: malformed PFM header (scale 0)')
    _check_dims(path, width, height)
    return channels, width, height, np.dtype('<f4' if scale < 0 else '>f4'), match.end()


def _pfm_flow_layout(path):
    """(channels, width, height, dtype, offset) of a PFM flow, its length checked."""
    path, head, size = _head_and_size(path, 256)
    channels, width, height, dtype, offset = _pfm_header(path, head)
    if channels != 3:
        raise UserError(f'{path}: a 1-channel PFM (Pf) cannot hold a flow; expected a 3-channel '
                        f'PF file (u, v and an unused third channel)')
    _check_payload(path, 'PFM', size - offset, 4 * channels * width * height)
    return channels, width, height, dtype, offset


def read_pfm_flow(path):
    """Read a PFM flow (FlyingThings3D's layout: 3 channels u, v and an unused third, rows
    stored bottom to top) into an (H, W, 2) float32 array."""
    channels, width, height, dtype, offset = _pfm_flow_layout(path)
    data = _read_bytes(path)
    values = np.frombuffer(data, dtype, offset=offset).reshape(height, width, channels)
    return np.ascontiguousarray(values[::-1, :, :2], dtype=np.float32)


def write_pfm(path, flow):
    """Write an (H, W, 2) flow as a little-endian 3-channel PFM (third channel 0), rows bottom
    to top, as FlyingThings3D stores its flows."""
    flow = _check_flow(flow)
    height, width = flow.shape[:2]
    values = np.zeros((height, width, 3), '<f4')
    values[..., :2] = flow
    header = b'PF\n%d %d\n-1.0\n' % (width, height)
    with atomic_output(path) as tmp:
        _write_chunks(tmp, [header, np.ascontiguousarray(values[::-1]).tobytes()])


def _npy_header(path):
    """((shape, dtype, payload offset), payload bytes present, payload bytes announced)."""
    path = _require_file(path)
    try:
        with open(path, 'rb') as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f'unsupported .npy version {version}')
            offset = f.tell()
        size = os.path.getsize(path)
    except OSError as e:
        raise UserError(f'{path}: cannot read ({e.strerror or e})') from e
    except (ValueError, SyntaxError, TypeError) as e:
        problem = ' '.join(str(e).split())[:200]
        raise UserError(f'{path}: not a .npy file ({problem})') from None
    if dtype.hasobject:
        raise UserError(f'{path}: a .npy of Python objects (pickled) is not read; save a float '
                        f'array')
    return (shape, dtype, offset), size - offset, int(np.prod(shape)) * dtype.itemsize


def _npy_flow_layout(path):
    (shape, dtype, offset), present, expected = _npy_header(path)
    if len(shape) != 3 or shape[2] != 2 or dtype.kind != 'f':
        raise UserError(f'{path}: a .npy flow must be an H x W x 2 float array in (x, y) pixels, '
                        f'got {dtype} with shape {shape}')
    _check_dims(path, shape[1], shape[0])
    _check_payload(path, '.npy', present, expected)
    return shape, dtype, offset


def read_npy_flow(path):
    """Read an H x W x 2 float .npy flow ((x, y) pixels) as float32; never unpickles."""
    _npy_flow_layout(path)
    try:
        flow = np.load(os.fspath(path), allow_pickle=False)
    except (OSError, ValueError) as e:
        raise UserError(f'{path}: cannot read the .npy flow ({" ".join(str(e).split())[:200]})') from None
    return np.ascontiguousarray(flow, dtype=np.float32)


def read_flow(path):
    """Ground truth by extension: (flow (H, W, 2) float32 in (x, y) px, valid (H, W) bool or
    None). ``.flo``, ``.pfm`` and ``.npy`` hold no valid mask; a KITTI ``.png`` holds its valid
    bit (invalid pixels keep the flow the file stores there)."""
    ext = _check_extension(path, FLOW_INPUT_EXTENSIONS, 'flow')
    if ext == '.png':
        return read_kitti_flow_png(path)
    reader = {'.flo': read_flo, '.pfm': read_pfm_flow, '.npy': read_npy_flow}[ext]
    return reader(path), None


def flow_size(path):
    """(height, width) of a ground-truth flow file from its header alone; UserError for a file
    of the wrong kind or one whose length does not match its header (a KITTI PNG's data is
    checked when it is decoded)."""
    ext = _check_extension(path, FLOW_INPUT_EXTENSIONS, 'flow')
    if ext == '.png':
        height, width, depth, colour = png_header(path)
        if depth != 16 or colour != 2:
            raise UserError(f'{path}: not a KITTI flow PNG (expected 16-bit 3-channel, got '
                            f'{depth}-bit PNG colour type {colour})')
        return height, width
    if ext == '.pfm':
        _, width, height, _, _ = _pfm_flow_layout(path)
        return height, width
    if ext == '.npy':
        shape, _, _ = _npy_flow_layout(path)
        return shape[0], shape[1]
    path, head, size = _head_and_size(path, 12)
    if len(head) < 12 or np.frombuffer(head, '<f4', 1)[0] != FLO_MAGIC:
        raise UserError(f'{path}: not a .flo file (bad magic number or too short)')
    width, height = (int(x) for x in np.frombuffer(head, '<i4', 2, offset=4))
    _check_dims(path, width, height)
    _check_payload(path, '.flo', size - 12, 8 * width * height)
    return height, width


def count_non_finite(path):
    """How many NaN or infinite values a float flow file (.flo, .pfm, .npy) holds as the
    float32 it is read as (a float64 1e300 is infinite then), read in chunks (memory stays
    small whatever the file's size); 0 for a KITTI PNG (integers)."""
    ext = _check_extension(path, FLOW_INPUT_EXTENSIONS, 'flow')
    if ext == '.png':
        return 0
    if ext == '.flo':
        flow_size(path)
        dtype, offset = np.dtype('<f4'), 12
    elif ext == '.pfm':
        _, _, _, dtype, offset = _pfm_flow_layout(path)
    else:
        _, dtype, offset = _npy_flow_layout(path)
    count = 0
    try:
        with open(path, 'rb') as f:
            f.seek(offset)
            while True:
                chunk = np.fromfile(f, dtype, count=_READ_CHUNK)
                if not chunk.size:
                    break
                with np.errstate(over='ignore'):   # beyond float32: inf, counted
                    chunk = chunk.astype(np.float32, copy=False)
                count += int(chunk.size - np.count_nonzero(np.isfinite(chunk)))
    except OSError as e:
        raise UserError(f'{path}: cannot read ({e.strerror or e})') from e
    return count


# --- sizes from headers ------------------------------------------------------------------------

def png_header(path):
    """(height, width, bit depth, colour type) from a PNG file's IHDR chunk."""
    path = _require_file(path)
    try:
        with open(path, 'rb') as f:
            head = f.read(8 + 8 + 13)
    except OSError as e:
        raise UserError(f'{path}: cannot read ({e.strerror or e})') from e
    if not head.startswith(_PNG_SIGNATURE):
        raise UserError(f'{path}: not a PNG file')
    if len(head) < 29 or head[12:16] != b'IHDR':
        raise UserError(f'{path}: truncated or corrupt PNG file (no IHDR chunk)')
    width, height, depth, colour = struct.unpack('>IIBB', head[16:26])
    _check_dims(path, width, height)
    return height, width, depth, colour


def _png_size(f):
    """(height, width) of the PNG open in ``f``, or None where decoding should decide (an
    ``eXIf`` chunk, whose orientation OpenCV may apply, or a malformed file)."""
    f.seek(8)
    head = f.read(8 + 13)
    if len(head) < 21 or head[4:8] != b'IHDR':
        return None
    width, height = struct.unpack('>II', head[8:16])
    f.seek(4, 1)   # the IHDR's CRC
    while True:
        chunk = f.read(8)
        if len(chunk) < 8:
            return None
        length, kind = struct.unpack('>I4s', chunk)
        if kind == b'eXIf':
            return None
        if kind in (b'IDAT', b'IEND'):
            return height, width
        f.seek(length + 4, 1)


def _exif_orientation(tiff):
    """The orientation tag (1 to 8) of an EXIF block's first IFD; 1 when absent."""
    order = {b'II': '<', b'MM': '>'}.get(tiff[:2])
    if order is None:
        raise ValueError('no byte order')
    magic, ifd = struct.unpack(order + 'HI', tiff[2:8])
    if magic != 42:
        raise ValueError('not TIFF')
    count, = struct.unpack(order + 'H', tiff[ifd:ifd + 2])
    for k in range(count):
        entry = tiff[ifd + 2 + 12 * k:ifd + 14 + 12 * k]
        tag, kind, _ = struct.unpack(order + 'HHI', entry[:8])
        if tag == 0x0112:
            return struct.unpack(order + 'H', entry[8:10])[0] if kind == 3 else 1
    return 1


_JPEG_SOF = {m for m in range(0xC0, 0xD0)} - {0xC4, 0xC8, 0xCC}


def _jpeg_size(f):
    """(height, width) of the JPEG open in ``f`` as OpenCV decodes it (EXIF orientations 5 to 8
    swap the sides), or None where decoding should decide."""
    f.seek(2)
    size, orientation = None, 1
    while True:
        byte = f.read(1)
        if byte != b'\xff':
            return None
        marker = f.read(1)
        while marker == b'\xff':
            marker = f.read(1)
        if not marker:
            return None
        code = marker[0]
        if code == 0x01 or 0xD0 <= code <= 0xD7:
            continue
        if code in (0xD9, 0xDA):   # the image ends or its data starts: every header was seen
            break
        length_bytes = f.read(2)
        if len(length_bytes) < 2 or int.from_bytes(length_bytes, 'big') < 2:
            return None
        length = int.from_bytes(length_bytes, 'big') - 2
        segment = f.read(length)
        if len(segment) < length:
            return None
        if code in _JPEG_SOF and size is None:
            if length < 5:
                return None
            _, height, width = struct.unpack('>BHH', segment[:5])
            if not height or not width:   # a height given later (DNL): let the decoder say
                return None
            size = (height, width)
        elif code == 0xE1 and segment.startswith(b'Exif\x00\x00') and orientation == 1:
            try:
                orientation = _exif_orientation(segment[6:])
            except (ValueError, struct.error):
                return None
    if size is None:
        return None
    return size[::-1] if orientation in (5, 6, 7, 8) else size


def image_size(path):
    """(height, width) of an image as ``read_image`` would decode it, from the file's header
    where it can be read (PNG, JPEG, binary PPM), else by decoding the image. UserError for a
    missing file or one that is not an image."""
    path = _require_file(path)
    try:
        with open(path, 'rb') as f:
            start = f.read(8)
            size = None
            if start.startswith(_PNG_SIGNATURE):
                size = _png_size(f)
            elif start.startswith(_JPEG_START):
                size = _jpeg_size(f)
            elif start.startswith(b'P6') and _ext(path) == '.ppm':
                f.seek(0)
                tokens, _ = _header_tokens(path, f.read(_HEADER_LIMIT), 4)
                width, height = (_parse_number(path, t, int) for t in tokens[1:3])
                size = (height, width)
    except OSError as e:
        raise UserError(f'{path}: cannot read ({e.strerror or e})') from e
    except (UserError, struct.error):
        size = None   # the decoder gives the precise message
    if size is None or not (0 < size[0] <= _MAX_DIM and 0 < size[1] <= _MAX_DIM):
        size = read_image(path).shape[:2]
    return tuple(int(s) for s in size)
