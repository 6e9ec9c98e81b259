"""Losses and resampling blocks on hand-computed values (the golden multi-scale loss is in test_parity)."""
import numpy as np
import mxnet as mx
import pytest

from network.layers import Downsample, Upsample
from network.losses import EpeLoss, MultiscaleEpe, kitti_fl, kitti_outliers, pooled_fl


def test_epe_loss_is_the_mean_end_point_error():
    pred = mx.nd.array([[[[3, 0]], [[4, 0]]]])      # (1, 2, 1, 2): vectors (3, 4) and (0, 0)
    assert EpeLoss()(pred, mx.nd.zeros_like(pred)).asnumpy() == pytest.approx([2.5])


def test_downsample_renormalises_the_triangular_kernel_at_the_border():
    ramp = mx.nd.array(np.tile(np.arange(4, dtype=np.float32), (4, 1))[None, None])
    out = Downsample(2)(ramp).asnumpy()[0, 0]
    # column 0: (2/3*0 + 1/3*1) / (2/3 + 1/3); column 1: (1/3*1 + 2/3*2 + 1/3*3) / (4/3)
    np.testing.assert_allclose(out, [[1 / 3, 2]] * 2, rtol=1e-6)
    const = mx.nd.full((1, 3, 8, 8), 7.0)
    np.testing.assert_allclose(Downsample(4)(const).asnumpy(), 7.0, rtol=1e-6)


def test_upsample_interpolates_and_replicates_the_last_sample():
    row = mx.nd.array([[[[0, 4]]]])   # (1, 1, 1, 2)
    np.testing.assert_allclose(Upsample(2)(row).asnumpy()[0, 0, 0], [0, 2, 4, 4], rtol=1e-6)


def test_multiscale_epe_by_downsampling_is_zero_for_downsampled_labels():
    rng = np.random.default_rng(0)
    label = mx.nd.array(rng.normal(size=(1, 2, 16, 16)).astype(np.float32))
    mask = mx.nd.ones((1, 1, 16, 16))
    loss_fn = MultiscaleEpe([4, 2], [1.0, 1.0], match='downsampling', eps=0.)
    preds = [Downsample(4)(label), Downsample(2)(label)]
    assert loss_fn(label, mask, *preds).asnumpy()[0] == pytest.approx(0, abs=1e-5)
    shifted = [p + 1 for p in preds]   # an error of (1, 1) everywhere: EPE sqrt(2) per level
    assert loss_fn(label, mask, *shifted).asnumpy()[0] == pytest.approx(2 * np.sqrt(2), rel=1e-5)


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
    fl = kitti_fl(*args).asnumpy()
    np.testing.assert_allclose(fl, [0.25, 1.0])
    assert fl.mean() == pytest.approx(5 / 8)
    assert pooled_fl(outliers, valid) == pytest.approx(2 / 5)
    assert np.isnan(pooled_fl(np.zeros(0), np.zeros(0)))
