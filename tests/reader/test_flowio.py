"""Tests for reader/flowio.py against the real sample files in tests/data/datasets.

Expected values come from tests/data/datasets/PROVENANCE.md, which was checked independently.
"""
import os
import re
import struct

import cv2
import flow_vis
import numpy as np
import pytest

from common.errors import UserError
from reader import flowio
from tests.helpers import (CHAIRS2, DATASETS, assert_one_line_error, damaged_jpeg,
                           encoded_picture)

CHAIRS = DATASETS / 'flyingchairs' / 'FlyingChairs_release' / 'data'
CHAIRS_CROP = DATASETS / 'flyingchairs_crop50' / 'FlyingChairs_release' / 'data'
SINTEL = DATASETS / 'sintel' / 'training'
KITTI = DATASETS / 'kitti2015' / 'training'
KITTI_FLOW = KITTI / 'flow_occ' / '000000_10.png'

def approx(value):
    return pytest.approx(value, abs=0.01)  # PROVENANCE.md rounds to two decimals


def _range(values):
    return float(values.min()), float(values.max())


def _warp_errors(img1, img2, flow, mask):
    """Mean |I1 - I2 warped by flow| and mean |I1 - I2| over masked, in-bounds pixels."""
    h, w = flow.shape[:2]
    x, y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    map_x, map_y = x + flow[..., 0], y + flow[..., 1]
    inside = mask & (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)
    warped = cv2.remap(img2.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR)
    img1 = img1.astype(np.float32)
    return (np.abs(img1 - warped).mean(axis=2)[inside].mean(),
            np.abs(img1 - img2).mean(axis=2)[inside].mean())


# ---------------------------------------------------------------- real fixtures

def test_read_flo_chairs():
    flow = flowio.read_flo(CHAIRS / '00001_flow.flo')
    assert flow.shape == (384, 512, 2) and flow.dtype == np.float32
    assert np.isfinite(flow).all()
    assert _range(flow[..., 0]) == (approx(-8.28), approx(24.69))
    assert _range(flow[..., 1]) == (approx(-73.47), approx(3.47))


@pytest.mark.parametrize('path, shape, u_range, v_range', [
    (CHAIRS_CROP / '00001_flow.flo', (50, 50), (-10.27, 0.68), (-7.75, -1.22)),
    (CHAIRS2 / '0000000-flow_01.flo', (50, 50), (-19.06, 0.41), (-0.31, 13.78)),
    (SINTEL / 'flow' / 'alley_1' / 'frame_0002.flo', (436, 1024), (-10.64, 2.19), (-3.52, 4.64)),
])
def test_read_flo_other_fixtures(path, shape, u_range, v_range):
    flow = flowio.read_flo(path)
    assert flow.shape == shape + (2,)
    assert _range(flow[..., 0]) == tuple(approx(x) for x in u_range)
    assert _range(flow[..., 1]) == tuple(approx(x) for x in v_range)


def test_chairs_flow_matches_its_frames():
    # Fails if u and v are swapped or rows are flipped: then warping no longer helps.
    img1 = flowio.read_image_rgb(CHAIRS / '00001_img1.ppm')
    img2 = flowio.read_image_rgb(CHAIRS / '00001_img2.ppm')
    flow = flowio.read_flo(CHAIRS / '00001_flow.flo')
    warp, zero = _warp_errors(img1, img2, flow, np.ones(flow.shape[:2], bool))
    assert warp < 0.6 * zero


def test_read_kitti_flow_png_fixture():
    flow, valid = flowio.read_kitti_flow_png(KITTI_FLOW)
    assert flow.shape == (375, 1242, 2) and flow.dtype == np.float32
    assert valid.shape == (375, 1242)
    assert valid.mean() == pytest.approx(0.162, abs=0.001)
    assert _range(flow[..., 0][valid]) == (approx(-184.25), approx(74.61))
    assert _range(flow[..., 1][valid]) == (approx(-7.17), approx(53.27))
    img1 = flowio.read_image(KITTI / 'image_2' / '000000_10.png')
    img2 = flowio.read_image(KITTI / 'image_2' / '000000_11.png')
    warp, zero = _warp_errors(img1, img2, flow, valid)
    assert warp < 0.6 * zero


@pytest.mark.parametrize('path, shape, value_range', [
    (CHAIRS / '00001_img1.ppm', (384, 512), (0, 253)),
    (CHAIRS / '00001_img2.ppm', (384, 512), (0, 228)),
    (CHAIRS_CROP / '00001_img1.ppm', (50, 50), (0, 255)),
    (CHAIRS_CROP / '00001_img2.ppm', (50, 50), (3, 255)),
])
def test_read_ppm_fixtures(path, shape, value_range):
    image = flowio.read_ppm(path)
    assert image.shape == shape + (3,) and image.dtype == np.uint8
    assert _range(image) == value_range
    # OpenCV decodes PPM on its own: an independent check of RGB order and layout.
    np.testing.assert_array_equal(image, cv2.imread(str(path))[..., ::-1])
    np.testing.assert_array_equal(flowio.read_image(path), cv2.imread(str(path)))
    np.testing.assert_array_equal(flowio.read_image_rgb(path), image)


@pytest.mark.parametrize('name, fraction', [('invalid', 0.0002), ('occlusions', 0.022)])
def test_read_sintel_masks(name, fraction):
    path = SINTEL / name / 'alley_1' / 'frame_0002.png'
    mask = flowio.read_mask_png(path)
    assert mask.shape == (436, 1024) and mask.dtype == bool
    assert mask.mean() == pytest.approx(fraction, abs=fraction * 0.25)
    np.testing.assert_array_equal(mask, cv2.imread(str(path), cv2.IMREAD_UNCHANGED) == 255)


def test_read_mask_any_nonzero_value_is_set(tmp_path):
    path = tmp_path / 'm.png'
    cv2.imwrite(str(path), np.array([[0, 1], [128, 255]], np.uint8))
    assert flowio.read_mask_png(path).tolist() == [[False, True], [True, True]]


def test_read_chairs2_rgb_mask():
    path = CHAIRS2 / '0000000-occ_01.png'
    mask = flowio.read_mask_png(path)
    assert mask.shape == (50, 50)
    np.testing.assert_array_equal(mask, cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) > 0)
    assert 0 < mask.mean() < 0.1


@pytest.mark.parametrize('path, shape', [
    (SINTEL / 'clean' / 'alley_1' / 'frame_0002.png', (436, 1024)),
    (SINTEL / 'final' / 'alley_1' / 'frame_0003.png', (436, 1024)),
    (KITTI / 'image_2' / '000000_10.png', (375, 1242)),
    (CHAIRS2 / '0000000-img_0.png', (50, 50)),
])
def test_read_image_fixtures(path, shape):
    bgr = flowio.read_image(path)
    assert bgr.shape == shape + (3,) and bgr.dtype == np.uint8
    np.testing.assert_array_equal(flowio.read_image_rgb(path), bgr[..., ::-1])


# ---------------------------------------------------------------- round trips

def test_flo_round_trip_is_byte_exact(tmp_path):
    original = CHAIRS_CROP / '00001_flow.flo'
    out = tmp_path / 'copy.flo'
    flowio.write_flo(out, flowio.read_flo(original))
    assert out.read_bytes() == original.read_bytes()


def test_write_flo_layout(tmp_path):
    flow = np.random.default_rng(0).normal(size=(3, 5, 2)).astype(np.float32)
    out = tmp_path / 'sub' / 'dir' / 'f.flo'  # parents are created
    flowio.write_flo(out, flow)
    data = out.read_bytes()
    assert len(data) == 12 + 8 * 15
    assert struct.unpack('<fii', data[:12]) == (202021.25, 5, 3)
    assert struct.unpack('<ff', data[12:20]) == tuple(flow[0, 0])
    np.testing.assert_array_equal(flowio.read_flo(out), flow)
    assert os.listdir(out.parent) == ['f.flo']


def test_kitti_fixture_round_trip_is_exact(tmp_path):
    flow, valid = flowio.read_kitti_flow_png(KITTI_FLOW)
    out = tmp_path / 'flow.png'
    flowio.write_kitti_flow_png(out, flow, valid)
    np.testing.assert_array_equal(cv2.imread(str(out), cv2.IMREAD_UNCHANGED),
                                  cv2.imread(str(KITTI_FLOW), cv2.IMREAD_UNCHANGED))


def test_kitti_quantisation_and_clamping(tmp_path):
    flow = np.array([[[0.3, -0.3], [600.0, -600.0]],
                     [[1 / 64, 511.984375], [np.nan, 2.0]]], np.float32)
    valid = np.array([[1, 0], [1, 1]], np.uint8)
    out = tmp_path / 'k.png'
    flowio.write_kitti_flow_png(out, flow, valid)
    decoded, decoded_valid = flowio.read_kitti_flow_png(out)
    assert decoded[0, 0].tolist() == [19 / 64, -19 / 64]  # round(0.3 * 64) = 19
    assert decoded[0, 1].tolist() == [511.984375, -512.0]  # clamped to [0, 65535]
    assert decoded[1, 0].tolist() == [1 / 64, 511.984375]
    assert decoded[1, 1].tolist() == [0.0, 0.0]  # NaN is written as zero flow ...
    assert decoded_valid.tolist() == [[True, False], [True, False]]  # ... and marked invalid
    raw = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16 and raw[0, 1].tolist() == [0, 0, 65535]  # B=valid, G=v, R=u


def test_kitti_valid_defaults_to_all(tmp_path):
    out = tmp_path / 'k.png'
    flowio.write_kitti_flow_png(out, np.full((4, 6, 2), 2.5, np.float32))
    flow, valid = flowio.read_kitti_flow_png(out)
    assert valid.all() and valid.shape == (4, 6)
    assert (flow == 2.5).all()


def test_write_npy_keeps_the_exact_name(tmp_path):
    array = np.arange(12, dtype=np.float32).reshape(2, 3, 2)
    out = tmp_path / 'flow.data'
    flowio.write_npy(out, array)
    assert os.listdir(tmp_path) == ['flow.data']
    np.testing.assert_array_equal(np.load(out), array)


@pytest.mark.parametrize('ext', ['.flo', '.npy', '.png', '.jpg', '.jpeg', '.PNG'])
def test_write_flow_each_extension(tmp_path, ext):
    flow = flowio.read_flo(CHAIRS_CROP / '00001_flow.flo')[:40]  # 40 x 50: H != W
    out = tmp_path / ('out' + ext)
    flowio.write_flow(out, flow)
    assert os.listdir(tmp_path) == [out.name]
    if ext == '.flo':
        np.testing.assert_array_equal(flowio.read_flo(out), flow)
    elif ext == '.npy':
        np.testing.assert_array_equal(np.load(out), flow)
    else:
        image = flowio.read_image_rgb(out)
        assert image.shape == (40, 50, 3)
        expected = flow_vis.flow_to_color(flow, convert_to_bgr=False)
        if ext.lower() == '.png':
            np.testing.assert_array_equal(image, expected)
        else:  # JPEG is lossy, but a BGR/RGB mix-up would still be far off
            assert np.abs(image.astype(int) - expected).mean() < 8


def test_write_flow_rejects_unknown_extension_early(tmp_path):
    out = tmp_path / 'flow.txt'
    with pytest.raises(UserError, match=r'\.flo') as excinfo:
        flowio.check_flow_output_path(out)
    assert_one_line_error(excinfo, out)
    with pytest.raises(UserError, match=r'\.flo') as excinfo:
        flowio.write_flow(out, np.zeros((2, 2, 2)))
    assert_one_line_error(excinfo, out)
    assert not out.exists()
    assert flowio.check_flow_output_path('a/b.JPEG') == '.jpeg'
    assert set(flowio.FLOW_OUTPUT_EXTENSIONS) == {'.flo', '.npy', '.png', '.jpg', '.jpeg'}


def test_write_image_channel_order_and_grayscale(tmp_path):
    red = np.zeros((2, 3, 3), np.uint8)
    red[..., 0] = 255
    flowio.write_image(tmp_path / 'red.png', red)
    assert cv2.imread(str(tmp_path / 'red.png'))[0, 0].tolist() == [0, 0, 255]  # BGR on disk
    np.testing.assert_array_equal(flowio.read_image_rgb(tmp_path / 'red.png'), red)
    gray = np.arange(6, dtype=np.uint8).reshape(2, 3) * 40
    flowio.write_image(tmp_path / 'gray.png', gray)
    on_disk = cv2.imread(str(tmp_path / 'gray.png'), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(on_disk, gray)
    with pytest.raises(UserError) as excinfo:
        flowio.write_image(tmp_path / 'red.bmp', red)
    assert_one_line_error(excinfo, tmp_path / 'red.bmp')
    with pytest.raises(ValueError):
        flowio.write_image(tmp_path / 'f.png', red.astype(np.float32))


def test_read_ppm_generic_header_with_comment(tmp_path):
    pixels = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    path = tmp_path / 'c.ppm'
    path.write_bytes(b'P6\n# made by hand\n3   2\n# another\n255\n' + pixels.tobytes())
    np.testing.assert_array_equal(flowio.read_ppm(path), pixels)


def test_read_image_grayscale_rgba_and_16bit(tmp_path):
    gray = np.array([[10, 200], [30, 40]], np.uint8)
    cv2.imwrite(str(tmp_path / 'g.png'), gray)
    image = flowio.read_image(tmp_path / 'g.png')
    assert image.shape == (2, 2, 3) and (image == gray[..., None]).all()
    bgra = np.zeros((2, 2, 4), np.uint8)
    bgra[..., :3] = (1, 2, 3)
    bgra[..., 3] = 7
    cv2.imwrite(str(tmp_path / 'a.png'), bgra)
    image = flowio.read_image(tmp_path / 'a.png')
    assert image.shape == (2, 2, 3) and image[0, 0].tolist() == [1, 2, 3]
    assert flowio.read_image_rgb(tmp_path / 'a.png')[0, 0].tolist() == [3, 2, 1]
    cv2.imwrite(str(tmp_path / 'w.png'), np.full((2, 2, 3), 0x1234, np.uint16))
    image = flowio.read_image(tmp_path / 'w.png')
    assert image.dtype == np.uint8 and (image == 0x12).all()


# ---------------------------------------------------------------- malformed input

FLO_HEADER = struct.pack('<fii', 202021.25, 2, 2)
PNG_8BIT = cv2.imencode('.png', np.zeros((2, 2, 3), np.uint8))[1].tobytes()
PNG_16BIT_GRAY = cv2.imencode('.png', np.zeros((2, 2), np.uint16))[1].tobytes()
MIXED_RGB_PNG = cv2.imencode('.png', np.array([[[0, 0, 255]]], np.uint8))[1].tobytes()


@pytest.mark.parametrize('reader, content, problem', [
    (flowio.read_flo, b'', 'only 0 bytes'),
    (flowio.read_flo, struct.pack('<fii', 1.0, 2, 2) + bytes(32), 'magic'),
    (flowio.read_flo, FLO_HEADER + bytes(28), 'truncated'),
    (flowio.read_flo, FLO_HEADER + bytes(36), 'trailing'),
    (flowio.read_flo, struct.pack('<fii', 202021.25, -2, 2), 'size'),
    (flowio.read_ppm, b'P5\n2 2\n255\n' + bytes(4), 'PPM'),
    (flowio.read_ppm, b'P6\n2 2\n65535\n' + bytes(24), 'maxval'),
    (flowio.read_ppm, b'P6\n2 2\n255\n' + bytes(11), 'truncated'),
    (flowio.read_ppm, b'P6\n2 0\n255\n', 'size'),
    (flowio.read_ppm, b'P6 2 2', 'header'),
    (flowio.read_ppm, b'P6\n1 1\n255#abc', 'whitespace'),
    (flowio.read_kitti_flow_png, PNG_8BIT, '16-bit'),
    (flowio.read_kitti_flow_png, b'not a png', 'decode'),
    (flowio.read_mask_png, PNG_16BIT_GRAY, '8-bit'),
    (flowio.read_mask_png, MIXED_RGB_PNG, 'channels'),
    (flowio.read_image, b'\x89PNG garbage', 'decode'),
    (flowio.read_image_rgb, bytes(100), 'decode'),
])
def test_malformed_files_raise_user_error(tmp_path, reader, content, problem):
    path = tmp_path / 'bad.dat'
    path.write_bytes(content)
    with pytest.raises(UserError, match=problem) as excinfo:
        reader(path)
    assert_one_line_error(excinfo, path)


ALL_READERS = [flowio.read_flo, flowio.read_ppm, flowio.read_image,
               flowio.read_image_rgb, flowio.read_kitti_flow_png, flowio.read_mask_png]


@pytest.mark.parametrize('reader', ALL_READERS)
def test_missing_file_and_directory_raise_user_error(tmp_path, reader):
    cases = ((tmp_path / 'missing.ppm', 'not found'), (tmp_path, 'not a regular file'))
    for path, problem in cases:
        with pytest.raises(UserError, match=problem) as excinfo:
            reader(path)
        assert_one_line_error(excinfo, path)


# ---------------------------------------------------------------- atomic writes

def _half_write_then_fail(path):
    with open(path, 'wb') as f:
        f.write(b'partial')
    raise RuntimeError('disk on fire')


def test_write_flo_failure_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(flowio, '_write_chunks', lambda tmp, chunks: _half_write_then_fail(tmp))
    with pytest.raises(RuntimeError):
        flowio.write_flo(tmp_path / 'f.flo', np.zeros((2, 2, 2)))
    assert os.listdir(tmp_path) == []


def test_failed_write_keeps_previous_file(tmp_path, monkeypatch):
    out = tmp_path / 'f.npy'
    out.write_bytes(b'old')
    monkeypatch.setattr(np, 'save', lambda f, *args, **kwargs: (f.write(b'partial'), 1 / 0))
    with pytest.raises(ZeroDivisionError):
        flowio.write_npy(out, np.zeros(3))
    assert os.listdir(tmp_path) == ['f.npy'] and out.read_bytes() == b'old'


@pytest.mark.parametrize('write', [
    lambda path: flowio.write_kitti_flow_png(path, np.zeros((2, 2, 2))),
    lambda path: flowio.write_image(path, np.zeros((2, 2, 3), np.uint8)),
    lambda path: flowio.write_flow(path, np.zeros((2, 2, 2))),
])
def test_image_writer_failure_leaves_nothing(tmp_path, monkeypatch, write):
    def imwrite_fails(tmp, image):
        assert tmp.endswith('.png')  # cv2 chooses the codec from the temp name
        with open(tmp, 'wb') as f:
            f.write(b'partial')
        return False
    monkeypatch.setattr(cv2, 'imwrite', imwrite_fails)
    out = tmp_path / 'out.png'
    with pytest.raises(UserError) as excinfo:
        write(out)
    assert_one_line_error(excinfo, out)
    assert os.listdir(tmp_path) == []


def test_failed_rename_becomes_user_error_and_cleans_up(tmp_path, monkeypatch):
    def replace_fails(src, dst):
        raise PermissionError(13, 'Permission denied')
    monkeypatch.setattr(os, 'replace', replace_fails)
    out = tmp_path / 'f.flo'
    with pytest.raises(UserError, match='Permission denied') as excinfo:
        flowio.write_flo(out, np.zeros((2, 2, 2)))
    assert_one_line_error(excinfo, out)
    assert os.listdir(tmp_path) == []


def test_opencv_exception_while_writing_is_a_user_error(tmp_path, monkeypatch):
    def imwrite_raises(tmp, image):
        raise cv2.error('OpenCV(4.11.0) loadsave.cpp:1: error: (-215:Assertion failed) !_img.empty()')
    monkeypatch.setattr(cv2, 'imwrite', imwrite_raises)
    out = tmp_path / 'out.png'
    with pytest.raises(UserError, match='OpenCV could not write') as excinfo:
        flowio.write_image(out, np.zeros((2, 2, 3), np.uint8))
    assert_one_line_error(excinfo, out)
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(not os.path.isdir('/proc/self/fd'), reason='names open files through /proc')
@pytest.mark.parametrize('write, name', [
    (lambda path: flowio.write_flo(path, np.zeros((2, 2, 2))), 'f.flo'),
    (lambda path: flowio.write_image(path, np.zeros((2, 2, 3), np.uint8)), 'f.png'),  # by cv2
])
def test_atomic_write_syncs_the_file_before_the_rename_and_the_folder_after(
        tmp_path, monkeypatch, write, name):
    events = []
    fsync, replace = os.fsync, os.replace

    def record_fsync(fd):
        events.append(('fsync', os.readlink('/proc/self/fd/%d' % fd)))
        fsync(fd)

    def record_replace(src, dst):
        events.append(('replace', os.fspath(dst)))
        replace(src, dst)
    monkeypatch.setattr(os, 'fsync', record_fsync)
    monkeypatch.setattr(os, 'replace', record_replace)
    out = tmp_path / name
    write(out)
    assert [kind for kind, _ in events] == ['fsync', 'replace', 'fsync'], events
    assert events[0][1].startswith(str(out) + '.tmp-')  # the temporary, reopened by path
    assert events[1:] == [('replace', str(out)), ('fsync', str(tmp_path))]


# ---------------------------------------------------------------- cut-short images

def _textured(height=48, width=64):
    rng = np.random.default_rng(1)
    return cv2.resize(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8), (width, height))


def _jpeg_with_thumbnail_marker(image, **params):
    """A JPEG whose APP1 segment holds an FF D9 pair, as an EXIF thumbnail's end does."""
    flags = [cv2.IMWRITE_JPEG_PROGRESSIVE, 1] if params.get('progressive') else []
    data = cv2.imencode('.jpg', image, flags)[1].tobytes()
    payload = b'Exif\x00\x00' + b'\xff\xd8 thumbnail \xff\xd9'
    app1 = b'\xff\xe1' + struct.pack('>H', len(payload) + 2) + payload
    return data[:2] + app1 + data[2:]


@pytest.mark.parametrize('progressive', [False, True])
def test_truncated_jpeg_is_an_error_not_a_half_grey_image(tmp_path, progressive):
    data = _jpeg_with_thumbnail_marker(_textured(), progressive=progressive)
    whole = tmp_path / 'whole.jpg'
    whole.write_bytes(data)
    expected = flowio.read_image(whole)
    assert np.abs(expected.astype(int) - _textured()).mean() < 8
    trailer = tmp_path / 'trailer.jpg'  # some cameras append data after the image
    trailer.write_bytes(data + b'\x00maker notes')
    np.testing.assert_array_equal(flowio.read_image(trailer), expected)
    for cut in [len(data) // 2, len(data) - 2, 40]:  # mid-scan, no end marker, in the headers
        path = tmp_path / ('cut%d.jpg' % cut)
        path.write_bytes(data[:cut])
        with pytest.raises(UserError, match='truncated JPEG') as excinfo:
            flowio.read_image(path)
        assert_one_line_error(excinfo, path)


def test_truncated_png_is_an_error(tmp_path):
    data = cv2.imencode('.png', _textured())[1].tobytes()
    for cut in [len(data) // 2, len(data) - 12]:  # mid-data, only the IEND chunk missing
        path = tmp_path / ('cut%d.png' % cut)
        path.write_bytes(data[:cut])
        for reader in (flowio.read_image, flowio.read_mask_png):
            with pytest.raises(UserError, match='truncated PNG') as excinfo:
                reader(path)
            assert_one_line_error(excinfo, path)


def test_output_is_complete_checks_flo_sizes_and_png_chunks(tmp_path):
    flo = tmp_path / 'a.flo'
    flowio.write_flo(flo, np.zeros((3, 4, 2), np.float32))
    whole = flo.read_bytes()
    assert len(whole) == 12 + 3 * 4 * 8 and flowio.output_is_complete(flo)
    for broken in (whole[:-1], whole + b'\0', whole[:11], b''):
        flo.write_bytes(broken)
        assert not flowio.output_is_complete(flo), len(broken)

    png = tmp_path / 'a.png'
    flowio.write_kitti_flow_png(png, np.full((5, 7, 2), 1.5, np.float32))
    whole = png.read_bytes()
    assert flowio.output_is_complete(png)
    middle = len(whole) // 2
    flipped = whole[:middle] + bytes([whole[middle] ^ 1]) + whole[middle + 1:]
    for broken in (whole[:-1], whole[:-12], whole + b'\0', flipped, whole[:8]):
        png.write_bytes(broken)
        assert not flowio.output_is_complete(png)
    assert not flowio.output_is_complete(tmp_path / 'missing.png')


# --- damaged, not only truncated ----------------------------------------------------------

def test_a_jpeg_with_a_damaged_scan_is_refused_with_the_decoders_words(tmp_path, capfd):
    with pytest.raises(UserError) as error:
        flowio.read_image(damaged_jpeg(tmp_path / 'bad.jpg'))
    assert str(error.value).startswith('%s: damaged image (the decoder says: Corrupt JPEG data'
                                       % (tmp_path / 'bad.jpg'))
    assert capfd.readouterr().err == ''   # the warning is in the message, not on the terminal
    good = tmp_path / 'good.jpg'
    good.write_bytes(bytes(encoded_picture('.jpg')))
    assert flowio.read_image(good).shape == (64, 96, 3)


def test_a_png_with_a_bad_chunk_is_corrupt_not_truncated(tmp_path):
    data = encoded_picture('.png')
    data[60] ^= 0xFF   # inside the first IDAT chunk
    (tmp_path / 'bad.png').write_bytes(bytes(data))
    with pytest.raises(UserError, match=r'bad.png: corrupt \(CRC mismatch in its IDAT chunk\) PNG'):
        flowio.read_image(tmp_path / 'bad.png')
    (tmp_path / 'cut.png').write_bytes(bytes(encoded_picture('.png')[:-20]))
    with pytest.raises(UserError, match=r'cut.png: truncated PNG file'):
        flowio.read_image(tmp_path / 'cut.png')
    (tmp_path / 'tail.png').write_bytes(bytes(encoded_picture('.png')) + b'junk')
    with pytest.raises(UserError, match=r'tail.png: corrupt \(4 bytes after its end\) PNG'):
        flowio.read_image(tmp_path / 'tail.png')


# --- sizes from headers, NaN counts, 16-bit masks (custom lists check these before work) ----

SINTEL_FLO = DATASETS / 'sintel' / 'training' / 'flow' / 'alley_1' / 'frame_0002.flo'

def flow_2x3():
    return np.arange(12, dtype=np.float32).reshape(2, 3, 2) - 5.5


def pfm_bytes(values, little=True, magic=b'PF'):
    """A PFM file built by hand: header lines, then rows bottom to top."""
    height, width = values.shape[:2]
    order = '<' if little else '>'
    header = b'%s\n%d %d\n%s\n' % (magic, width, height, b'-1.0' if little else b'1.0')
    return header + np.ascontiguousarray(values[::-1]).astype(order + 'f4').tobytes()


def test_pfm_is_read_as_flyingthings3d_stores_it(tmp_path):
    flow = flow_2x3()
    third = np.stack([flow[..., 0], flow[..., 1], np.full((2, 3), 7, np.float32)], axis=2)
    for little in (True, False):
        path = tmp_path / ('f%d.pfm' % little)
        path.write_bytes(pfm_bytes(third, little))
        np.testing.assert_array_equal(flowio.read_pfm_flow(path), flow)
        assert flowio.flow_size(path) == (2, 3)


def test_written_pfm_is_the_hand_built_file(tmp_path):
    flow = flow_2x3()
    flowio.write_pfm(tmp_path / 'w.pfm', flow)
    third = np.concatenate([flow, np.zeros((2, 3, 1), np.float32)], axis=2)
    assert (tmp_path / 'w.pfm').read_bytes() == pfm_bytes(third)


@pytest.mark.parametrize('content, problem', [
    (pfm_bytes(np.zeros((2, 3, 1), np.float32), magic=b'Pf'), '1-channel'),
    (pfm_bytes(np.zeros((2, 3, 3), np.float32))[:-4], 'truncated'),
    (pfm_bytes(np.zeros((2, 3, 3), np.float32)) + b'xx', 'trailing'),
    (b'P6\n3 2\n255\n' + bytes(18), 'not a PFM'),
    (b'PF\n3 2\n0\n' + bytes(72), 'scale 0'),
])
def test_bad_pfm_files_are_refused_with_their_name(tmp_path, content, problem):
    path = tmp_path / 'bad.pfm'
    path.write_bytes(content)
    for reader in (flowio.read_pfm_flow, flowio.flow_size):
        with pytest.raises(UserError, match=problem) as error:
            reader(path)
        assert str(error.value).startswith(str(path) + ': ')


def test_npy_flows_of_any_float_type_come_back_as_float32(tmp_path):
    flow = flow_2x3()
    for dtype in (np.float16, np.float32, np.float64):
        path = tmp_path / ('f_%s.npy' % np.dtype(dtype).name)
        np.save(path, flow.astype(dtype))
        got = flowio.read_npy_flow(path)
        assert got.dtype == np.float32 and got.flags.c_contiguous
        np.testing.assert_array_equal(got, flow.astype(dtype).astype(np.float32))
        assert flowio.flow_size(path) == (2, 3)
    fortran = tmp_path / 'fortran.npy'
    np.save(fortran, np.asfortranarray(flow))
    np.testing.assert_array_equal(flowio.read_npy_flow(fortran), flow)


def test_bad_npy_flows_are_refused_and_never_unpickled(tmp_path):
    cases = {'chw.npy': np.zeros((2, 3, 4), np.float32), 'ints.npy': np.zeros((2, 3, 2), np.int32)}
    for name, array in cases.items():
        np.save(tmp_path / name, array)
        with pytest.raises(UserError, match='H x W x 2 float'):
            flowio.flow_size(tmp_path / name)
    np.save(tmp_path / 'objects.npy', np.array([{'a': 1}], dtype=object), allow_pickle=True)
    with pytest.raises(UserError, match='pickled'):
        flowio.read_npy_flow(tmp_path / 'objects.npy')
    np.save(tmp_path / 'cut.npy', flow_2x3())
    data = (tmp_path / 'cut.npy').read_bytes()
    (tmp_path / 'cut.npy').write_bytes(data[:-5])
    with pytest.raises(UserError, match='truncated'):
        flowio.read_npy_flow(tmp_path / 'cut.npy')
    assert not flowio.output_is_complete(tmp_path / 'cut.npy')
    (tmp_path / 'text.npy').write_text('not numpy')
    with pytest.raises(UserError, match='not a .npy file'):
        flowio.flow_size(tmp_path / 'text.npy')


def test_npy_output_is_complete_only_when_whole(tmp_path):
    path = tmp_path / 'flow.npy'
    flowio.write_npy(path, flow_2x3())
    assert flowio.output_is_complete(path)
    path.write_bytes(path.read_bytes() + b'\0')
    assert not flowio.output_is_complete(path)
    assert not flowio.output_is_complete(tmp_path / 'missing.npy')


def test_read_flow_goes_by_extension_and_gives_kittis_valid_bit(tmp_path):
    flow = flow_2x3()
    flowio.write_flo(tmp_path / 'f.flo', flow)
    flowio.write_pfm(tmp_path / 'f.pfm', flow)
    np.save(tmp_path / 'f.npy', flow)
    valid = np.array([[1, 0, 1], [1, 1, 0]], bool)
    flowio.write_kitti_flow_png(tmp_path / 'f.png', flow, valid)
    for name in ('f.flo', 'f.pfm', 'f.npy'):
        got, got_valid = flowio.read_flow(tmp_path / name)
        np.testing.assert_array_equal(got, flow)
        assert got_valid is None
    got, got_valid = flowio.read_flow(tmp_path / 'f.png')
    np.testing.assert_array_equal(got, np.round(flow * 64) / 64)
    np.testing.assert_array_equal(got_valid, valid)
    with pytest.raises(UserError, match="unsupported flow extension '.txt'"):
        flowio.read_flow(tmp_path / 'f.txt')


def test_flow_size_reads_headers_of_the_real_files():
    assert flowio.flow_size(SINTEL_FLO) == flowio.read_flo(SINTEL_FLO).shape[:2] == (436, 1024)
    assert flowio.flow_size(KITTI_FLOW) == (375, 1242)


def test_an_8_bit_png_is_not_a_kitti_flow(tmp_path):
    cv2.imwrite(str(tmp_path / 'rgb.png'), np.zeros((4, 5, 3), np.uint8))
    with pytest.raises(UserError, match='not a KITTI flow PNG'):
        flowio.flow_size(tmp_path / 'rgb.png')


def test_non_finite_values_are_counted_across_read_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(flowio, '_READ_CHUNK', 5)   # 12 values: three chunks
    flow = flow_2x3()
    flow[0, 2, 1] = np.nan        # value 5: the end of the first chunk
    flow[1, 0, 0] = np.inf        # value 6: the start of the second
    flow[1, 2, 1] = -np.inf       # value 11: the last
    flowio.write_flo(tmp_path / 'f.flo', flow)
    flowio.write_pfm(tmp_path / 'f.pfm', flow)
    np.save(tmp_path / 'f.npy', flow.astype(np.float64))
    for name in ('f.flo', 'f.pfm', 'f.npy'):
        assert flowio.count_non_finite(tmp_path / name) == 3, name
    flowio.write_flo(tmp_path / 'ok.flo', flow_2x3())
    assert flowio.count_non_finite(tmp_path / 'ok.flo') == 0
    assert flowio.count_non_finite(KITTI_FLOW) == 0


def _exif_app1(orientation, little=False):
    order = '<' if little else '>'
    tiff = ((b'II' if little else b'MM') + struct.pack(order + 'HI', 42, 8)
            + struct.pack(order + 'H', 1) + struct.pack(order + 'HHIHH', 0x0112, 3, 1, orientation, 0)
            + struct.pack(order + 'I', 0))
    body = b'Exif\x00\x00' + tiff
    return b'\xff\xe1' + struct.pack('>H', len(body) + 2) + body


def _with_segment(jpeg, segment):
    return jpeg[:2] + segment + jpeg[2:]


@pytest.fixture(scope='module')
def images(tmp_path_factory):
    """Images of 33 x 47 (H x W) in the formats whose headers are read, and some that are not."""
    folder = tmp_path_factory.mktemp('images')
    image = np.random.default_rng(0).integers(0, 256, (33, 47, 3), dtype=np.uint8)
    paths = {}
    for name, params in (('plain.png', []), ('plain.jpg', []), ('plain.bmp', []),
                         ('plain.ppm', []), ('plain.tif', []), ('plain.webp', []),
                         ('progressive.jpg', [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])):
        paths[name] = folder / name
        assert cv2.imwrite(str(paths[name]), image, params)
    cv2.imwrite(str(folder / 'gray16.png'), np.zeros((33, 47), np.uint16))
    paths['gray16.png'] = folder / 'gray16.png'
    jpeg = paths['plain.jpg'].read_bytes()
    for orientation in (1, 3, 6, 8):
        for little in (False, True):
            name = 'exif%d%s.jpg' % (orientation, 'ii' if little else 'mm')
            paths[name] = folder / name
            paths[name].write_bytes(_with_segment(jpeg, _exif_app1(orientation, little)))
    # a large segment (a thumbnail's size) before the frame header
    paths['big_app.jpg'] = folder / 'big_app.jpg'
    paths['big_app.jpg'].write_bytes(_with_segment(jpeg, b'\xff\xe2\xff\xf0' + bytes(65518)))
    return paths


def test_image_sizes_from_headers_are_what_the_decoder_gives(images):
    for name, path in images.items():
        decoded = flowio.read_image(path).shape[:2]
        assert flowio.image_size(path) == decoded, name
    assert flowio.image_size(images['exif6mm.jpg']) == (47, 33)   # rotated by its EXIF tag
    assert flowio.image_size(images['exif3ii.jpg']) == (33, 47)


def test_image_size_reads_the_header_only(images, monkeypatch):
    def no_decoding(*args):
        raise AssertionError('decoded')
    monkeypatch.setattr(flowio, 'read_image', no_decoding)
    for name in ('plain.png', 'plain.jpg', 'progressive.jpg', 'plain.ppm', 'exif6ii.jpg',
                 'big_app.jpg', 'gray16.png'):
        assert flowio.image_size(images[name]) == ((47, 33) if 'exif6' in name else (33, 47))


def test_image_size_errors_name_the_file(tmp_path):
    with pytest.raises(UserError, match='file not found'):
        flowio.image_size(tmp_path / 'missing.png')
    (tmp_path / 'junk.png').write_bytes(b'\x89PNG\r\n\x1a\n' + bytes(30))
    with pytest.raises(UserError, match='junk.png'):
        flowio.image_size(tmp_path / 'junk.png')


def test_masks_of_16_bits_are_read_where_asked(tmp_path):
    mask = np.array([[0, 1], [65535, 0]], np.uint16)
    cv2.imwrite(str(tmp_path / 'm.png'), mask)
    assert flowio.read_mask_png(tmp_path / 'm.png', sixteen_bit=True).tolist() == [
        [False, True], [True, False]]
    with pytest.raises(UserError, match='8-bit'):
        flowio.read_mask_png(tmp_path / 'm.png')
    assert flowio.png_header(tmp_path / 'm.png') == (2, 2, 16, 0)


def test_what_other_threads_print_while_a_jpeg_decodes_is_not_damage_and_is_not_lost(
        tmp_path, capfd):
    """The decoder's messages are collected from the process's standard error while a JPEG
    decodes; lines of other threads printed meanwhile pass on (they once made a valid JPEG
    'damaged')."""
    import os
    import threading
    good = tmp_path / 'good.jpg'
    good.write_bytes(bytes(encoded_picture('.jpg')))
    stop = threading.Event()
    printed = []

    def chatter():
        while not stop.is_set():
            os.write(2, b'progress %d\n' % len(printed))
            printed.append(1)
    thread = threading.Thread(target=chatter)
    thread.start()
    try:
        for _ in range(200):
            assert flowio.read_image(good).shape == (64, 96, 3)
    finally:
        stop.set()
        thread.join()
    err = capfd.readouterr().err
    assert err.count('progress') == len(printed) > 0
    with pytest.raises(UserError, match='damaged image'):
        flowio.read_image(damaged_jpeg(tmp_path / 'bad.jpg'))


def test_a_png_whose_data_is_damaged_under_valid_crcs_is_one_line_with_libpngs_words(
        tmp_path, capfd):
    import zlib
    data = encoded_picture('.png')
    start = data.index(b'IDAT')
    length = int.from_bytes(data[start - 4:start], 'big')
    for k in range(start + 14, start + 34):
        data[k] ^= 0xFF
    data[start + 4 + length:start + 8 + length] = zlib.crc32(
        bytes(data[start:start + 4 + length])).to_bytes(4, 'big')
    (tmp_path / 'bad.png').write_bytes(bytes(data))
    with pytest.raises(UserError, match=r'bad.png: cannot decode image \(corrupt or unsupported '
                                        r'format; the decoder says: libpng error: '):
        flowio.read_image(tmp_path / 'bad.png')
    assert capfd.readouterr().err == ''   # libpng's own line went into the error, not before it


def test_check_image_complete_reads_the_whole_file_without_decoding_it(tmp_path):
    """What the start of --pairs, --frames and validation runs on every image."""
    image = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / 'a.png'), image)
    cv2.imwrite(str(tmp_path / 'a.jpg'), image)
    ppm = sorted(CHAIRS.glob('*_img1.ppm'))[0].read_bytes()
    (tmp_path / 'a.ppm').write_bytes(ppm)
    for name in ('a.png', 'a.jpg', 'a.ppm'):
        flowio.check_image_complete(tmp_path / name)   # whole: no error
    png, jpg = (tmp_path / 'a.png').read_bytes(), (tmp_path / 'a.jpg').read_bytes()
    for name, data, problem in (
            ('cut.png', png[:-30], 'truncated PNG file'),
            ('tail.png', png + b'xx', 'corrupt (2 bytes after its end) PNG file'),
            ('cut.jpg', jpg[:-2], 'truncated JPEG file'),
            ('cut.ppm', ppm[:-1], 'PPM'),
            ('wide.ppm', ppm.replace(b'255', b'65535', 1), 'unsupported PPM maxval 65535')):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(UserError, match='^%s: .*%s' % (re.escape(str(tmp_path / name)),
                                                        re.escape(problem))):
            flowio.check_image_complete(tmp_path / name)


def test_a_clean_png_is_decoded_without_the_process_wide_capture(tmp_path, monkeypatch):
    """The capture's lock let one loader thread decode at a time (docs/performance.md)."""
    image = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / 'a.png'), image)
    captured = []
    real = flowio.decoder_messages
    monkeypatch.setattr(flowio, 'decoder_messages',
                        lambda *args, **kwargs: captured.append(1) or real(*args, **kwargs))
    np.testing.assert_array_equal(flowio.read_image(tmp_path / 'a.png'), image)
    assert captured == []
    cv2.imwrite(str(tmp_path / 'a.jpg'), image)
    flowio.read_image(tmp_path / 'a.jpg')   # a JPEG's warnings are its damage: captured
    assert captured == [1]
