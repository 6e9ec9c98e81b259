"""reader/flowio.py for your own data: .pfm and .npy flows, read_flow by extension, sizes read
from headers (checked against OpenCV's decoder), NaN counts in chunks, 16-bit masks."""
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from common.errors import UserError
from reader import flowio

DATA = Path(__file__).resolve().parent.parent / 'data' / 'datasets'
KITTI_FLOW = DATA / 'kitti2015' / 'training' / 'flow_occ' / '000000_10.png'
SINTEL_FLO = DATA / 'sintel' / 'training' / 'flow' / 'alley_1' / 'frame_0002.flo'


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
