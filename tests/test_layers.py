"""Channel-aligned convolutions compute what the plain ones do, with the checkpoints' shapes."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon

from network.layers import AlignedConv2D, alignment_padding, concat_aligned


def test_alignment_padding_reaches_the_next_multiple_of_16():
    assert [alignment_padding(c) for c in (1, 2, 16, 81, 131, 579, 592)] == [15, 14, 0, 15, 13, 13, 0]


@pytest.mark.parametrize('make_pair', [
    lambda: (AlignedConv2D(2, 3, 21, pad_in=11, pad_out=14, padding=1),
             gluon.nn.Conv2D(2, 3, padding=1, in_channels=21)),
    lambda: (AlignedConv2D(8, 3, 21, pad_in=11, padding=2, dilation=2),
             gluon.nn.Conv2D(8, 3, padding=2, dilation=2, in_channels=21)),
], ids=['prediction', 'dilated'])
def test_aligned_convolution_equals_the_plain_one(make_pair):
    aligned, plain = make_pair()
    for block in (aligned, plain):
        block.initialize(mx.init.Normal(0.1))
        block.hybridize()
    # The same parameters, of the plain layer's shapes (the checkpoint contract).
    for (_, a), (_, p) in zip(sorted(aligned.collect_params().items()),
                              sorted(plain.collect_params().items())):
        assert a.shape == p.shape
        a.set_data(p.data())
    x = mx.nd.random.normal(shape=(2, 21, 9, 10))
    x_padded = concat_aligned(mx.nd, x, padding=11)
    assert x_padded.shape == (2, 32, 9, 10) and float(x_padded[:, 21:].abs().sum().asscalar()) == 0
    outputs, grads = [], []
    for block, data in ((aligned, x_padded), (plain, x)):
        with autograd.record():
            y = block(data)
            loss = (y * y).sum()
        loss.backward()
        outputs.append(y.asnumpy())
        grads.append([p.grad().asnumpy() for _, p in sorted(block.collect_params().items())])
    assert outputs[0].shape == outputs[1].shape
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-5, atol=1e-5)
    for g_aligned, g_plain in zip(*grads):
        np.testing.assert_allclose(g_aligned, g_plain, rtol=1e-4, atol=1e-4)
