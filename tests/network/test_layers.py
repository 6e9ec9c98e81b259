"""The layers rewritten for speed compute what MXNet's plain operators do: channel-aligned and
explicitly padded convolutions (with the checkpoints' shapes), the tiled correlation and the
deformable convolution as a convolution and a gather."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon

from common.devices import cpu_flags
from network import layers
from network.layers import (AlignedConv2D, DeformableConv2D, alignment_padding,
                            concat_aligned, correlation)


def test_alignment_padding_reaches_the_next_multiple_of_16():
    assert [alignment_padding(c) for c in (1, 2, 16, 81, 131, 579, 592)] == [15, 14, 0, 15, 13, 13, 0]


@pytest.mark.parametrize('make_pair', [
    lambda: (AlignedConv2D(2, 3, 21, pad_in=11, pad_out=14, padding=1),
             gluon.nn.Conv2D(2, 3, padding=1, in_channels=21)),
    lambda: (AlignedConv2D(8, 3, 21, pad_in=11, padding=2, dilation=2),
             gluon.nn.Conv2D(8, 3, padding=2, dilation=2, in_channels=21)),
    lambda: (AlignedConv2D(8, 3, 21, pad_in=11, padding=4, dilation=4),
             gluon.nn.Conv2D(8, 3, padding=4, dilation=4, in_channels=21)),
    lambda: (AlignedConv2D(2, 3, 21, pad_in=11, padding=1, by_taps=True),
             gluon.nn.Conv2D(2, 3, padding=1, in_channels=21)),
    lambda: (AlignedConv2D(1, 3, 21, pad_in=11, padding=1, by_taps=True),
             gluon.nn.Conv2D(1, 3, padding=1, in_channels=21)),
], ids=['prediction', 'dilated', 'dilated-wide-border', 'flow-by-taps', 'mask-by-taps'])
@pytest.mark.parametrize('explicit_pad_above', [2, None], ids=['pad-op', 'inline-pad'])
def test_aligned_convolution_equals_the_plain_one(make_pair, explicit_pad_above, monkeypatch):
    monkeypatch.setattr(layers, 'EXPLICIT_PAD_ABOVE', explicit_pad_above)
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


def test_wide_borders_become_a_separate_pad_below_avx512(monkeypatch):
    monkeypatch.setattr(layers, 'EXPLICIT_PAD_ABOVE', 2)
    assert AlignedConv2D(8, 3, 16, padding=4, dilation=4)._kwargs['pad'] == (0, 0)
    assert AlignedConv2D(8, 3, 16, padding=2, dilation=2)._kwargs['pad'] == (2, 2)
    monkeypatch.setattr(layers, 'EXPLICIT_PAD_ABOVE', None)
    assert AlignedConv2D(8, 3, 16, padding=4, dilation=4)._kwargs['pad'] == (4, 4)


def test_the_pad_limit_follows_the_cpu(tmp_path):
    avx512, avx2 = tmp_path / 'avx512', tmp_path / 'avx2'
    avx512.write_text('processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512bw\n\n')
    avx2.write_text('processor\t: 0\nflags\t\t: fpu sse2 avx2\n\n')
    assert 'avx512f' in cpu_flags(str(avx512)) and 'avx512f' not in cpu_flags(str(avx2))
    assert cpu_flags(str(tmp_path / 'missing')) == frozenset()
    assert layers.EXPLICIT_PAD_ABOVE == (None if 'avx512f' in cpu_flags() else 2)


class _Correlation(gluon.HybridBlock):
    def __init__(self, md, channels=None, tile=None):
        super().__init__()
        self.args = (md, channels, tile)

    def hybrid_forward(self, F, a, b):
        return correlation(F, a, b, *self.args)


def values_and_gradients(block, inputs, head, hybridize):
    """[output, each input's gradient, each parameter's gradient] of ``block`` on ``inputs``,
    backpropagating ``head``, as numpy arrays."""
    if hybridize:
        block.hybridize()
    for a in inputs:
        a.attach_grad()
    with autograd.record():
        out = block(*inputs)
    out.backward(head)
    return ([out.asnumpy()] + [a.grad.asnumpy() for a in inputs]
            + [p.grad().asnumpy() for p in block.collect_params().values()])


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
    results = [values_and_gradients(block, (f1, f2), head, hybridize)
               for block in (_Correlation(md), _Correlation(md, shape[1], tile))]
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


class _MXNetDeformable(gluon.HybridBlock):
    """The reference: MXNet's DeformableConvolution with the flow repeated for all nine taps."""

    def __init__(self, channels, in_channels, use_bias):
        super().__init__()
        self.channels = channels
        with self.name_scope():
            self.weight = self.params.get('weight', shape=(channels, in_channels, 3, 3))
            self.bias = self.params.get('bias', shape=(channels,)) if use_bias else None

    def hybrid_forward(self, F, x, flow_yx, weight, bias=None):
        offsets = F.reshape(F.repeat(F.expand_dims(flow_yx, axis=1), 9, axis=1), (0, -3, -2))
        args = (x, offsets, weight) + (() if bias is None else (bias,))
        return F.contrib.DeformableConvolution(*args, kernel=(3, 3), pad=(1, 1), num_filter=self.channels,
                                               num_deformable_group=1, no_bias=bias is None)


@pytest.mark.parametrize('shape, use_bias', [((1, 4, 6, 7), True), ((2, 16, 9, 12), False),
                                             ((3, 2, 5, 4), True), ((2, 3, 4, 4), False)])
@pytest.mark.parametrize('hybridize', [True, False])
@pytest.mark.parametrize('border_strips', [False, True])
def test_deformable_convolution_equals_mxnets(shape, use_bias, hybridize, border_strips):
    rng = np.random.default_rng(shape[1])
    n, c, h, w = shape
    flow = _border_flows(rng, n, h, w)
    _assert_deformable_equals_mxnets(rng, shape, flow, use_bias, hybridize, border_strips)


@pytest.mark.parametrize('shape', [(1, 3, 1, 1), (2, 3, 2, 1), (1, 2, 1, 5)])
def test_deformable_convolution_on_the_coarsest_levels_sizes(shape):
    """The coarsest level of a 64-pixel input is 1 x 1: the shifted copies and the gather
    must hold there too."""
    rng = np.random.default_rng(sum(shape))
    n, c, h, w = shape
    _assert_deformable_equals_mxnets(rng, shape, rng.uniform(-2, 2, (n, 2, h, w)), True, True)


def _assert_deformable_equals_mxnets(rng, shape, flow, use_bias, hybridize, border_strips=False):
    n, c, h, w = shape
    x = mx.nd.array(rng.standard_normal(shape))
    flow = mx.nd.array(flow)
    head = mx.nd.array(rng.standard_normal((n, 5, h, w)))
    blocks = [_MXNetDeformable(5, c, use_bias), DeformableConv2D(5, c, use_bias=use_bias, border_strips=border_strips)]
    for block in blocks:
        block.initialize(mx.init.Normal(0.5))
    if use_bias:
        blocks[0].bias.set_data(mx.nd.array(rng.standard_normal(5)))
    for param, first in zip(blocks[1].collect_params().values(), blocks[0].collect_params().values()):
        param.set_data(first.data())
    results = [values_and_gradients(block, (x, flow), head, hybridize) for block in blocks]
    for got, want, what in zip(results[1], results[0], ('values', 'grad x', 'grad flow', 'grad weight',
                                                        'grad bias')):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4, err_msg=what)


def test_deformable_convolution_by_hand():
    """One channel, the centre tap only: the output is x read at p + flow by MXNet's rules:
    bilinear inside, the last row/column for positions in [H-1, H), zero in (-1, 0) and beyond."""
    x = np.arange(1, 13, dtype=np.float32).reshape(1, 1, 3, 4)
    block = DeformableConv2D(1, 1, use_bias=False)
    block.initialize()
    kernel = np.zeros((1, 1, 3, 3), np.float32)
    kernel[0, 0, 1, 1] = 1
    block.weight.set_data(mx.nd.array(kernel))
    flow = np.zeros((1, 2, 3, 4), np.float32)
    flow[0, :, 0, 0] = (0.5, 0.25)     # inside: bilinear
    flow[0, :, 0, 1] = (-0.5, 0)       # row -0.5: zero
    flow[0, :, 2, 0] = (0.5, 0)        # row 2.5 of 3: the last row
    flow[0, :, 2, 3] = (0, 0.75)       # column 3.75 of 4: the last column
    flow[0, :, 1, 2] = (1.0, 1.0)      # row 2, column 3: the corner exactly
    flow[0, :, 1, 1] = (0, -1.25)      # column -0.25: zero
    got = block(mx.nd.array(x), mx.nd.array(flow)).asnumpy()[0, 0]
    want = x[0, 0].copy()
    want[0, 0] = 0.5 * (0.75 * 1 + 0.25 * 2) + 0.5 * (0.75 * 5 + 0.25 * 6)
    want[0, 1] = 0
    want[2, 0] = 9
    want[2, 3] = 12
    want[1, 2] = 12
    want[1, 1] = 0
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)

