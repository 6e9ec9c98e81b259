"""reader/kitti.py: KITTI 2012 and 2015 listing (parts, testing), loading, crop and resize."""
import dataclasses

import cv2
import numpy as np
import pytest

from common.errors import UserError
from reader import kitti
from reader.sample import load_sample
from tests.helpers import SAMPLE, fake_kitti, names

pytestmark = pytest.mark.usefixtures('no_root_environment')

KITTI15 = SAMPLE / 'data_scene_flow'


def test_kitti_parts_keep_the_last_file_and_sort(tmp_path):
    root = fake_kitti(tmp_path / 'k15', [50, 11, 0, 10, 199])
    assert names(kitti.list_samples(root, '2015', 'mixed')) == [
        'kitti2015/training/%06d' % i for i in (0, 10, 11, 50, 199)]
    assert names(kitti.list_samples(root, '2015', 'train')) == \
        ['kitti2015/training/000000', 'kitti2015/training/000050']
    assert names(kitti.list_samples(root, '2015', 'valid')) == [
        'kitti2015/training/%06d' % i for i in (10, 11, 199)]
    root12 = fake_kitti(tmp_path / 'k12', [0, 1], edition='2012')
    assert names(kitti.list_samples(root12, '2012', 'train')) == ['kitti2012/training/000001']
    assert kitti.list_samples(root12, '2012', 'train')[0].img1.parent.name == 'colored_0'


def test_kitti_testing_lists_pairs_without_flow(tmp_path):
    root = fake_kitti(tmp_path / 'k15', [0, 1, 2], split='testing')
    samples = kitti.list_samples(root, '2015', 'testing')
    assert names(samples) == ['kitti2015/testing/%06d' % i for i in (0, 1, 2)]
    example = load_sample(samples[-1])
    assert example.flow is None and example.mask is None


def test_kitti_loading_is_bgr_with_valid_bit_mask():
    [sample] = kitti.list_samples(KITTI15, '2015', 'train')
    example = load_sample(sample)
    np.testing.assert_array_equal(example.img1, cv2.imread(str(sample.img1)))  # BGR
    np.testing.assert_array_equal(example.img2, cv2.imread(str(sample.img2)))
    raw = cv2.imread(str(sample.flow), cv2.IMREAD_UNCHANGED)
    valid = raw[..., 0] > 0
    assert example.flow.shape == (375, 1242, 2) and example.flow.dtype == np.float32
    np.testing.assert_array_equal(example.flow[valid], (raw[valid][:, [2, 1]] - 32768.0) / 64)
    assert (example.flow[~valid] == 0).all()
    assert example.mask.shape == (375, 1242, 1) and example.mask.dtype == np.uint8
    np.testing.assert_array_equal(example.mask[..., 0], np.where(valid, 255, 0))


def test_kitti_crop_keeps_bottom_left():
    [plain] = kitti.list_samples(KITTI15, '2015')
    [cropped] = kitti.list_samples(KITTI15, '2015', crop=(370, 1224))
    full, crop = load_sample(plain), load_sample(cropped)
    for a, b in zip(full, crop):
        assert b.shape[:2] == (370, 1224)
        np.testing.assert_array_equal(b, a[5:, :1224])
    with pytest.raises(UserError, match='smaller than the crop 1300x370'):
        load_sample(dataclasses.replace(cropped, crop_bottom_left=(370, 1300)))


def original_sparse_resize(flow, valid, size_wh):
    """The original's resize written out independently: flow, then a valid-fraction division."""
    width, height = size_wh
    scale = (np.float32([width, height]) - 1) / (np.float32([flow.shape[1], flow.shape[0]]) - 1)
    flow = cv2.resize(flow, (width, height)) * scale
    occ = cv2.resize(valid.astype(np.float32), (width, height))[..., None]
    return flow / (occ + (occ == 0)), (occ * 255).astype(np.uint8)


def test_kitti_resize_matches_the_original_sparse_resize():
    [sample] = kitti.list_samples(KITTI15, '2015', resize_hw=(370, 1224))
    example = load_sample(sample)
    raw = cv2.imread(str(sample.flow), cv2.IMREAD_UNCHANGED)
    flow = ((raw[..., [2, 1]].astype(np.float32) - 32768) / 64)  # the file stores 0 when invalid
    expected_flow, expected_mask = original_sparse_resize(flow, raw[..., 0], (1224, 370))
    assert example.flow.shape == (370, 1224, 2) and example.mask.shape == (370, 1224, 1)
    np.testing.assert_array_equal(example.flow, expected_flow)
    np.testing.assert_array_equal(example.mask, expected_mask)
    np.testing.assert_array_equal(example.img1, cv2.resize(cv2.imread(str(sample.img1)), (1224, 370)))
    partial = (example.mask > 0) & (example.mask < 255)
    assert partial.any()  # soft weights at the borders of the valid regions
    # inside fully valid regions the flow is the plain bilinear resize, scaled per axis
    inside = example.mask[..., 0] == 255
    plain = cv2.resize(flow, (1224, 370)) * np.float32([1223 / 1241, 369 / 374])
    np.testing.assert_allclose(example.flow[inside], plain[inside], rtol=1e-5, atol=1e-4)


def test_kitti_missing_frame_names_the_path(tmp_path):
    root = fake_kitti(tmp_path / 'k15', [0, 1])
    (root / 'training' / 'image_2' / '000001_11.png').unlink()
    with pytest.raises(UserError, match=r'image_2/000001_11\.png: file not found'):
        kitti.list_samples(root, '2015')
    with pytest.raises(UserError, match='flow_occ: KITTI folder not found'):
        kitti.list_samples(tmp_path / 'nothing', '2012')
