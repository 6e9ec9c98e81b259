"""Losses and resampling blocks on hand-computed values (the golden multi-scale loss is in
tests/parity/test_parity.py)."""
import numpy as np
import mxnet as mx
import pytest

from network.layers import Upsample
from network.losses import kitti_outliers, pooled_fl


def test_upsample_interpolates_and_replicates_the_last_sample():
    row = mx.nd.array([[[[0, 4]]]])   # (1, 1, 1, 2)
    np.testing.assert_allclose(Upsample(2)(row).asnumpy()[0, 0, 0], [0, 2, 4, 4], rtol=1e-6)


def test_kitti_fl_per_image_mean_differs_from_the_pooled_fl_all():
    """Image A: 4 valid pixels, 1 outlier (error 5 px vs label 0); the others are not outliers:
    error 2 px, error 5 px but only 2.5 % of a 200 px label, and error 0. Image B: 1 valid
    pixel, an outlier, and an invalid pixel with a large error. Fl: A 1/4, B 1/1; per-image
    mean 5/8; pooled over the 5 valid pixels 2/5."""
    label = np.zeros((2, 2, 1, 4), np.float32)
    label[0, 0, 0, 2] = 200
    flow = label.copy()
    flow[0, 0, 0] += [5, 2, 5, 0]
    flow[1, 1, 0] += [5, 0, 50, 0]
    mask = np.array([[[[1, 1, 1, 1]]], [[[1, 0, 0, 0]]]], np.float32)
    args = [mx.nd, mx.nd.array(flow), mx.nd.array(label), mx.nd.array(mask)]
    outliers, valid = (c.asnumpy() for c in kitti_outliers(*args))
    np.testing.assert_array_equal(outliers, [1, 1])
    np.testing.assert_array_equal(valid, [4, 1])
    fl = outliers / valid   # the per-image Fl the original reported
    np.testing.assert_allclose(fl, [0.25, 1.0])
    assert fl.mean() == pytest.approx(5 / 8)
    assert pooled_fl(outliers, valid) == pytest.approx(2 / 5)
    assert np.isnan(pooled_fl(np.zeros(0), np.zeros(0)))
