"""The layers rewritten for speed compute what MXNet's plain operators do: channel-aligned and
explicitly padded convolutions (with the checkpoints' shapes), the tiled correlation and the
sampled deformable convolution."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon

from network.layers import (AlignedConv2D, DeformableConv2D, alignment_padding, concat_aligned,
                            correlation)


def test_alignment_padding_reaches_the_next_multiple_of_16():
    assert [alignment_padding(c) for c in (1, 2, 16, 81, 131, 579, 592)] == [15, 14, 0, 15, 13, 13, 0]


@pytest.mark.parametrize('make_pair', [
    lambda: (AlignedConv2D(2, 3, 21, pad_in=11, pad_out=14, padding=1),
             gluon.nn.Conv2D(2, 3, padding=1, in_channels=21)),
    lambda: (AlignedConv2D(8, 3, 21, pad_in=11, padding=2, dilation=2),
             gluon.nn.Conv2D(8, 3, padding=2, dilation=2, in_channels=21)),
    lambda: (AlignedConv2D(8, 3, 21, pad_in=11, padding=4, dilation=4),
             gluon.nn.Conv2D(8, 3, padding=4, dilation=4, in_channels=21)),
], ids=['prediction', 'dilated', 'dilated-explicit-pad'])
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


def test_wide_borders_become_a_separate_pad():
    assert AlignedConv2D(8, 3, 16, padding=4, dilation=4)._kwargs['pad'] == (0, 0)
    assert AlignedConv2D(8, 3, 16, padding=2, dilation=2)._kwargs['pad'] == (2, 2)


class _Correlation(gluon.HybridBlock):
    def __init__(self, md, channels=None, tile=None):
        super().__init__()
        self.args = (md, channels, tile)

    def hybrid_forward(self, F, a, b):
        return correlation(F, a, b, *self.args)


@pytest.mark.parametrize('md, tile, shape', [
    (4, 16, (1, 5, 7, 32)),     # the tile of level 2
    (4, 8, (2, 3, 6, 24)),      # level 3, a batch of 2
    (4, 4, (1, 4, 5, 12)),      # a window reaching two tiles further
    (2, 16, (1, 6, 9, 16)),     # MaskFlownet's cascade: displacement 2, one tile per row
    (2, 4, (2, 3, 4, 8)),
])
@pytest.mark.parametrize('hybridize', [True, False])
def test_tiled_correlation_equals_mxnets_in_values_and_gradients(md, tile, shape, hybridize):
    rng = np.random.default_rng(sum(shape) + md + tile)
    f1, f2 = (mx.nd.array(rng.standard_normal(shape)) for _ in range(2))
    head = mx.nd.array(rng.standard_normal((shape[0], (2 * md + 1) ** 2) + shape[2:]))
    results = []
    for block in (_Correlation(md), _Correlation(md, shape[1], tile)):
        if hybridize:
            block.hybridize()
        for a in (f1, f2):
            a.attach_grad()
        with autograd.record():
            out = block(f1, f2)
        out.backward(head)
        results.append([out.asnumpy(), f1.grad.asnumpy(), f2.grad.asnumpy()])
    for got, want, what in zip(results[1], results[0], ('values', 'grad feat1', 'grad feat2')):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=what)


def test_correlation_by_hand():
    """One channel, displacement 1: channel (dy+1)*3+(dx+1) at p is f1(p) * f2(p + (dy, dx))."""
    f1 = np.arange(1, 9, dtype=np.float32).reshape(1, 1, 2, 4)
    f2 = np.arange(10, 90, 10, dtype=np.float32).reshape(1, 1, 2, 4)
    want = np.zeros((1, 9, 2, 4), np.float32)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            for y in range(2):
                for x in range(4):
                    if 0 <= y + dy < 2 and 0 <= x + dx < 4:
                        want[0, (dy + 1) * 3 + dx + 1, y, x] = f1[0, 0, y, x] * f2[0, 0, y + dy, x + dx]
    for tile in (None, 2, 4):
        got = correlation(mx.nd, mx.nd.array(f1), mx.nd.array(f2), 1, 1, tile).asnumpy()
        np.testing.assert_array_equal(got, want, err_msg='tile %s' % tile)


def _border_flows(rng, n, h, w):
    """Continuous (y, x) flows putting taps everywhere MXNet's border rules differ: inside,
    in (-1, 0), in [H-1, H) / [W-1, W), and beyond the image."""
    flow = rng.uniform(-2.5, 2.5, size=(n, 2, h, w))
    flow[:, 0, 0, :] = rng.uniform(-0.99, -0.01, size=(n, w))        # row 0: taps in (-1, 0)
    flow[:, 0, -1, :] = rng.uniform(0.01, 0.99, size=(n, w))         # last row: in (H-1, H)
    flow[:, 1, :, -1] = rng.uniform(0.01, 0.99, size=(n, h))         # last column
    flow[:, :, 1, 1] = (-7.5, 30.25)                                  # far outside
    return flow


@pytest.mark.parametrize('shape, use_bias', [((1, 4, 6, 7), True), ((2, 16, 9, 12), False)])
def test_sampled_deformable_convolution_equals_mxnets(shape, use_bias):
    rng = np.random.default_rng(shape[1])
    n, c, h, w = shape
    x = mx.nd.array(rng.standard_normal(shape))
    flow = mx.nd.array(_border_flows(rng, n, h, w))
    head = mx.nd.array(rng.standard_normal((n, 5, h, w)))
    blocks = [DeformableConv2D(5, c, use_bias=use_bias) for _ in range(2)]
    for block in blocks:
        block.initialize(mx.init.Normal(0.5))
    if use_bias:
        blocks[0].bias.set_data(mx.nd.array(rng.standard_normal(5)))
    for param, first in zip(blocks[1].collect_params().values(), blocks[0].collect_params().values()):
        param.set_data(first.data())
    results = []
    for block, sampled in zip(blocks, (False, True)):
        block.sampled = sampled
        block.hybridize()
        for a in (x, flow):
            a.attach_grad()
        with autograd.record():
            out = block(x, flow)
        out.backward(head)
        results.append([out.asnumpy(), x.grad.asnumpy(), flow.grad.asnumpy()] +
                       [p.grad().asnumpy() for p in block.collect_params().values()])
    for got, want, what in zip(results[1], results[0], ('values', 'grad x', 'grad flow', 'grad weight',
                                                        'grad bias')):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4, err_msg=what)
