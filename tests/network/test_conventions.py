"""The network's input conventions on hand-computed values."""
import mxnet as mx
import numpy as np

from network.conventions import centralize


def test_centralize_subtracts_the_mean_of_both_images_per_sample_and_channel():
    img1 = np.zeros((2, 3, 2, 4), np.float32)
    img2 = np.zeros((2, 3, 2, 4), np.float32)
    img1[0, 0] = 1.0                  # sample 0, channel 0: mean of 8 ones and 8 zeros
    img2[0, 1, 1, :] = 0.8            # sample 0, channel 1: 4 of 16 pixels at 0.8
    img1[1, 2, 0, 0] = 1.6            # sample 1, channel 2: one pixel of 16
    want_mean = np.zeros((2, 3), np.float32)
    want_mean[0, 0], want_mean[0, 1], want_mean[1, 2] = 0.5, 0.2, 0.1
    out1, out2, rgb_mean = centralize(mx.nd.array(img1), mx.nd.array(img2))
    np.testing.assert_allclose(rgb_mean.asnumpy().reshape(2, 3), want_mean, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(out1.asnumpy(), img1 - want_mean[:, :, None, None], atol=1e-6)
    np.testing.assert_allclose(out2.asnumpy(), img2 - want_mean[:, :, None, None], atol=1e-6)
