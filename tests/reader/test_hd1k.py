"""reader/hd1k.py: HD1K listing (pairs within sequences, validation), trim and normalisation."""
import dataclasses

import cv2
import numpy as np
import pytest

from reader import hd1k
from reader.sample import Sample, load_sample
from tests.helpers import fake_hd1k, names

pytestmark = pytest.mark.usefixtures('no_root_environment')


def test_hd1k_listing_pairs_within_sequences_and_validation_position(tmp_path):
    root = fake_hd1k(tmp_path / 'hd1k', [7, 2])
    mixed = hd1k.list_samples(root, 'mixed')
    # the last flow of each sequence has no successor and is not used, like the original
    assert names(mixed) == ['hd1k/000000_%04d' % f for f in range(6)] + ['hd1k/000001_0000']
    assert mixed[4].img1.name == '000000_0004.png' and mixed[4].img2.name == '000000_0005.png'
    assert names(hd1k.list_samples(root, 'valid')) == ['hd1k/000000_0004']
    assert 'hd1k/000000_0004' not in names(hd1k.list_samples(root, 'train'))
    assert len(hd1k.list_samples(root, 'train')) == 6


def test_hd1k_trim_and_normalize_follow_the_original(tmp_path):
    root = fake_hd1k(tmp_path / 'hd1k', [2])
    [sample] = hd1k.list_samples(root)
    example = load_sample(sample)
    img1 = cv2.imread(str(sample.img1))[50:-50, 100:-100]
    img2 = cv2.imread(str(sample.img2))[50:-50, 100:-100]
    low, high = min(img1.min(), img2.min()), max(img1.max(), img2.max())
    expected = ((img1.astype(np.float64) - low) * (255.0 / (high - low))).astype(np.uint8)
    assert example.img1.shape == (275, 1042, 3)
    np.testing.assert_array_equal(example.img1, expected)  # BGR, stretched
    raw = cv2.imread(str(sample.flow), cv2.IMREAD_UNCHANGED)[50:-50, 100:-100]
    np.testing.assert_array_equal(example.mask[..., 0], np.where(raw[..., 0] > 0, 255, 0))
    plain = load_sample(dataclasses.replace(sample, normalize=False, trim_margins=None))
    np.testing.assert_array_equal(plain.img1, cv2.imread(str(sample.img1)))
    resized = load_sample(dataclasses.replace(sample, resize_hw=(436, 1024)))
    assert resized.img1.shape == (436, 1024, 3) and resized.flow.shape == (436, 1024, 2)
    assert resized.mask.shape == (436, 1024, 1)


def test_hd1k_normalize_stretches_the_pair_jointly(tmp_path):
    img1 = np.full((300, 1100, 3), 20, np.uint8)
    img1[:, :10] = 100
    img2 = np.full((300, 1100, 3), 120, np.uint8)
    img2[:, :10] = 70
    cv2.imwrite(str(tmp_path / 'a.png'), img1)
    cv2.imwrite(str(tmp_path / 'b.png'), img2)
    sample = Sample(name='n', img1=tmp_path / 'a.png', img2=tmp_path / 'b.png', flow=None,
                    channel_order='bgr', normalize=True)
    example = load_sample(sample)
    # joint min 20 and max 120, scaled by 255.0 / 100 and truncated like the original:
    # 20 -> 0, 70 -> 127, 100 -> 204, 120 -> 254 (100 * 2.55 is just below 255 in floating point)
    assert set(np.unique(example.img1)) == {0, 204} and set(np.unique(example.img2)) == {127, 254}
