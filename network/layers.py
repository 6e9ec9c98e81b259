"""Parameter-free building blocks and the deformable convolution used by both networks.

Flows travel through these blocks in (y, x) channel order, the order of MXNet's deformable
convolution offsets; it is kept for compatibility with the original checkpoints.
"""
from mxnet.gluon import nn

from common.devices import cpu_flags


# oneDNN's direct convolution kernels on CPUs (AVX2, AVX-512) work on blocks of 8 or 16 channels;
# a convolution with another input or output channel count falls back to a slower GEMM-based
# kernel. The decoders' dense inputs (579, 387, ... channels) and flow/mask predictions (2 and
# 1 channels) are all of that kind, so they run on channel counts padded with zeros to
# multiples of CHANNEL_ALIGN (docs/performance.md, "Channel alignment").
CHANNEL_ALIGN = 16
# Inference is another matter on AVX-512 CPUs: there oneDNN (2.4, in mxnet 1.9) runs inference
# convolutions with its brgemm kernels on channel-last data, which take any input channel count
# at full speed. Its training kernels are the blocked ones above. The predictions' 1 and 2
# output channels would still fall back to the GEMM kernel: inference computes them tap by tap
# instead (_conv3x3_by_taps).
INFERENCE_CHANNEL_ALIGN = (1 if {'avx512f', 'avx512bw', 'avx512vl', 'avx512dq'} <= cpu_flags()
                           else CHANNEL_ALIGN)
# oneDNN's AVX2 direct kernels accept a border of at most a couple of pixels; wider borders
# (the context network's dilations 4, 8 and 16) are added by a Pad before the convolution.
# Its AVX-512 kernels take any border, and there the Pad (with the layout changes around it)
# slowed the context network down: no limit.
EXPLICIT_PAD_ABOVE = None if 'avx512f' in cpu_flags() else 2


def alignment_padding(channels, align=CHANNEL_ALIGN):
    """How many zero channels bring ``channels`` up to a multiple of ``align``."""
    return -channels % align


class AlignedConv2D(nn.Conv2D):
    """A Conv2D run on zero-padded channels: ``pad_in`` zero input channels are expected after
    the real ones (concat_aligned appends them to the data), ``pad_out`` extra output channels
    are computed and cut off. The parameters keep the shapes the checkpoints have; the zero rows
    and columns of the weight are added on the fly, so the result equals the unpadded
    convolution's up to float summation order, and gradients reach only the real weights."""

    def __init__(self, channels, kernel_size, in_channels, pad_in=0, pad_out=0, by_taps=False,
                 **kwargs):
        super().__init__(channels, kernel_size, in_channels=in_channels, **kwargs)
        self._channels = channels
        self._pad_in = pad_in
        self._pad_out = pad_out
        self._by_taps = by_taps
        if by_taps:   # see _conv3x3_by_taps: computes the real outputs only
            assert pad_out == 0 and (self._kwargs['kernel'], self._kwargs['stride'],
                                     self._kwargs['dilate'], self._kwargs['pad']) == \
                ((3, 3), (1, 1), (1, 1), (1, 1)), (pad_out, self._kwargs)
        self._kwargs['num_filter'] = channels + pad_out   # the weight's shape is already set
        # The context convolutions with dilation and padding 4, 8 and 16 fell to GEMM +
        # im2col until their zero border became a separate Pad.
        self._explicit_pad = None
        if EXPLICIT_PAD_ABOVE is not None and max(self._kwargs['pad']) > EXPLICIT_PAD_ABOVE:
            ph, pw = self._kwargs['pad']
            self._explicit_pad = (0, 0, 0, 0, ph, ph, pw, pw)
            self._kwargs['pad'] = (0, 0)

    def hybrid_forward(self, F, x, weight, bias=None):
        if self._pad_in:
            weight = _append_zeros(F, weight, self._pad_in, axis=1)
        if self._pad_out:
            weight = _append_zeros(F, weight, self._pad_out, axis=0)
            if bias is not None:
                bias = _append_zeros(F, bias, self._pad_out, axis=0, ndim=1)
        if self._by_taps:
            out = _conv3x3_by_taps(F, x, weight, self._channels)
            if bias is not None:
                out = F.broadcast_add(out, F.reshape(bias, (1, -1, 1, 1)))
            return out if self.act is None else self.act(out)
        if self._explicit_pad:
            x = F.pad(x, mode='constant', pad_width=self._explicit_pad)
        args = (x, weight) if bias is None else (x, weight, bias)
        out = F.Convolution(*args, name='fwd', **self._kwargs)
        if self._pad_out:
            out = F.slice_axis(out, axis=1, begin=0, end=self._channels)
        return out if self.act is None else self.act(out)


def conv_block(channels, in_channels, kernel_size=3, stride=1, padding=1, dilation=1,
               activation=True, pad_in=0):
    """Conv2D (+ LeakyReLU 0.1) wrapped in a HybridSequential; ``pad_in``: see AlignedConv2D.

    The wrapper is what puts the ``.0.`` into checkpoint names (``conv1a.0.weight``).
    """
    block = nn.HybridSequential()
    with block.name_scope():
        block.add(AlignedConv2D(channels, kernel_size, in_channels, pad_in=pad_in, strides=stride,
                                padding=padding, dilation=dilation))
        if activation:
            block.add(nn.LeakyReLU(0.1))
    return block


def deconv_block(channels, in_channels):
    """Conv2DTranspose 4x4 stride 2 (+ LeakyReLU 0.1): the ``upfeat`` feature upsampler."""
    block = nn.HybridSequential()
    with block.name_scope():
        block.add(nn.Conv2DTranspose(channels, 4, strides=2, padding=1, in_channels=in_channels))
        block.add(nn.LeakyReLU(0.1))
    return block


def predict_conv(channels, in_channels, pad_in=0, by_taps=False):
    """Plain 3x3 Conv2D with no wrapper (``pred_flow*``, ``pred_mask*``, ``dc_conv7``), its
    few output channels computed as CHANNEL_ALIGN, or with ``by_taps`` tap by tap (see
    _conv3x3_by_taps)."""
    return AlignedConv2D(channels, 3, in_channels, pad_in=pad_in,
                         pad_out=0 if by_taps else alignment_padding(channels), padding=1,
                         by_taps=by_taps)


def _conv3x3_by_taps(F, x, weight, channels):
    """A 3x3 convolution (stride 1, border 1, no bias) with few output ``channels``, as one
    1x1 convolution to each tap's outputs (9 x ``channels``) and a sum of shifted slices.

    Run directly, oneDNN computes such a convolution on 16 output channels (its block), 8-16x
    the multiply-adds (docs/performance.md, "Predictions by taps"; bench/ab_by_taps.py).
    Same numbers up to float summation order.
    """
    taps = F.transpose(weight, (2, 3, 0, 1))                       # 3, 3, channels, C
    taps = F.reshape(F.reshape(F.reshape(taps, (-3, -2)), (-3, -2)), (0, 0, 1, 1))
    # oneDNN's channel-last 1x1 kernel needs whole blocks of 16 outputs; with 9 or 18 it
    # takes a GEMM kernel on another layout (a reorder of all 579 input channels).
    extra = alignment_padding(9 * channels)
    if extra:
        taps = _append_zeros(F, taps, extra, axis=0)
    planes = F.Convolution(x, taps, kernel=(1, 1), num_filter=9 * channels + extra, no_bias=True)
    # The 3x3 convolution's zero border, added to the few planes (a border on the 1x1
    # convolution itself also sends it to the GEMM kernel).
    planes = F.pad(planes, mode='constant', pad_width=(0, 0, 0, 0, 1, 1, 1, 1))
    shifted = [F.slice(planes, begin=(None, (3 * ky + kx) * channels, ky, kx),
                       end=(None, (3 * ky + kx + 1) * channels, (ky - 2) or None, (kx - 2) or None))
               for ky in range(3) for kx in range(3)]
    return F.add_n(*shifted)


def concat(F, *parts, axis, ndim=4, onednn=False):
    """``parts`` (``ndim`` axes each) concatenated on ``axis`` (0 <= axis < ndim).

    MXNet 1.9 sends a Concat whose ``dim`` is above 0 to oneDNN (2-d and 4-d float parts),
    whose backward pass leaks memory per part and call (mkldnn_concat.cc allocates a memory
    object per part with ``new`` and never frees it), for as long as a training run lasts. The
    axis counted from the end takes MXNet's own kernels, forward and backward. ``onednn``: keep
    oneDNN's, for a graph that never runs backward; they concatenate oneDNN's blocked layouts
    as they are, where MXNet's first converts every part (slower, more memory). Small or rare
    concatenations (weights, 5-d parts) are left to MXNet's either way. The measurements are
    in docs/performance.md, "Concatenation and training memory".
    """
    assert 0 <= axis < ndim, (axis, ndim)
    return F.concat(*parts, dim=axis if onednn else axis - ndim)


def concat_aligned(F, *parts, padding=0, onednn=False):
    """``parts`` concatenated on the channel axis (NCHW), with ``padding`` zero channels after."""
    if padding:
        parts = parts + (_zero_lines(F, parts[0], padding, axis=1),)
    return concat(F, *parts, axis=1, onednn=onednn) if len(parts) > 1 else parts[0]


def _zero_lines(F, array, count, axis):
    """``count`` zero lines shaped like ``array``'s along ``axis``."""
    return F.repeat(F.zeros_like(F.slice_axis(array, axis=axis, begin=0, end=1)), count, axis=axis)


def _append_zeros(F, array, count, axis, ndim=4):
    """``array`` with ``count`` zero lines appended along ``axis`` (weights, biases)."""
    return concat(F, array, _zero_lines(F, array, count, axis), axis=axis, ndim=ndim)


def _merge_channels(F, img):
    """(N, C, H, W) -> (N*C, 1, H, W) so a single-filter kernel treats every channel alike."""
    return F.expand_dims(F.reshape(img, (-3, -2)), axis=1)


def _split_channels(F, merged, like):
    return F.reshape_like(merged, like, lhs_begin=0, lhs_end=2, rhs_begin=0, rhs_end=2)


def _separable_kernel(F, taps, size):
    """(1, 1, size, size) kernel: the outer product of a 1-D kernel with itself."""
    return F.reshape(F.broadcast_mul(F.expand_dims(taps, axis=0), F.expand_dims(taps, axis=1)),
                     (1, 1, size, size))


class Upsample(nn.HybridBlock):
    """Upsample by an integer factor with a triangular (bilinear) transposed-convolution kernel.

    ``out[j] = lerp(in, j / factor)`` with the last input sample replicated past the end. This
    is neither align_corners=True nor False; it is the original's Upsample, kept exactly for
    compatibility with the original checkpoints, whose coarse flows were learned through it.
    """

    def __init__(self, factor, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def hybrid_forward(self, F, img):
        f = self.factor
        if f == 1:
            return img
        size = 2 * f - 1
        kernel = _separable_kernel(F, 1 - F.abs((f - 1) - F.arange(0, size)) / f, size)
        # One replicated row and column at the far edge give the last output samples a
        # neighbour to interpolate towards; the extra output row/column is cut off below.
        padded = F.pad(_merge_channels(F, img), mode='edge', pad_width=(0, 0, 0, 0, 0, 1, 0, 1))
        up = F.Deconvolution(padded, kernel, kernel=(size, size), stride=(f, f), pad=(f - 1, f - 1),
                             num_filter=1, no_bias=True)
        up = F.slice(up, begin=(None, None, None, None), end=(None, None, -1, -1))
        return _split_channels(F, up, img)


def correlation(F, feat1, feat2, max_displacement, channels=None, tile=None, forward_only=False):
    """Cost volume: channel (dy+md)*(2md+1)+(dx+md) holds <feat1(p), feat2(p+d)> / C.

    With ``tile`` (a divisor of the width) and ``channels`` (C) it is computed by
    ``tiled_correlation``; otherwise by MXNet's Correlation operator. Both give the same
    numbers up to float summation order. ``forward_only``: for a graph that never runs
    backward (see ``concat``).
    """
    md = max_displacement
    if tile:
        return tiled_correlation(F, feat1, feat2, md, channels, tile, forward_only)
    return F.Correlation(feat1, feat2, pad_size=md, kernel_size=1, max_displacement=md,
                         stride1=1, stride2=1, is_multiply=True)


def tiled_correlation(F, feat1, feat2, md, channels, tile, forward_only=False):
    """The correlation of ``correlation`` as batched matrix products over tiles of ``tile``
    pixels of a row, so that its backward pass is matrix products too (MXNet's Correlation
    has a single-threaded backward; docs/performance.md, "Tiled correlation").

    For each tile and each row offset dy, the tile's features of image 1 (tile x C) are
    multiplied with the window of image 2 it can reach ((tile + 2md) x C: the tile's columns
    and 2md more). The products with dx = 0..2md lie on the band (t, t + dx) of that
    tile x (tile + 2md) matrix. Flattened, (t, t + dx) sits at t * (tile + 2md + 1) + dx, so
    with ``tile`` zeros appended a reshape to rows of tile + 2md + 1 puts the band in the
    first 2md + 1 columns. The width must be a multiple of ``tile``. It computes
    (tile + 2md) / (2md + 1) times the products needed and is still faster.

    Everything runs channel-last (N, H, W, C), the layout oneDNN keeps convolution outputs
    in: the features arrive and the cost volume leaves by 4-d transposes that are plain
    layout changes, and the tiles are reshapes.
    """
    T, K = tile, 2 * md + 1
    E = T + 2 * md                      # window width of one tile
    extra = -(-2 * md // T)             # further tiles a window reaches into
    feat1 = F.transpose(feat1, (0, 2, 3, 1))                              # N,H,W,C
    rows = F.reshape(feat1 * (1. / channels), (-1, T, channels))          # B,T,C
    padded = F.pad(feat2, mode='constant', pad_width=(0, 0, 0, 0, md, md, md, extra * T - md))
    padded = F.transpose(padded, (0, 2, 3, 1))                            # N,H+2md,W+extra*T,C
    pieces = [F.reshape(F.slice_axis(padded, axis=2, begin=i * T, end=(i - extra) * T or None),
                        (0, 0, -4, -1, T, 0)) for i in range(extra + 1)]  # N,H+2md,W/T,T,C
    windows = F.slice_axis(concat(F, *pieces, axis=3, ndim=5),
                           axis=3, begin=0, end=E)                        # N,H+2md,W/T,E,C
    bands = []
    for dy in range(K):
        window = F.reshape(F.slice_axis(windows, axis=1, begin=dy, end=(dy - 2 * md) or None),
                           (-1, E, channels))                             # B,E,C
        products = F.batch_dot(rows, window, transpose_b=True)            # B,T,E
        flat = F.reshape(products, (0, -1))
        flat = concat(F, flat, F.zeros_like(F.slice_axis(flat, axis=1, begin=0, end=T)), axis=1,
                      ndim=2, onednn=forward_only)
        bands.append(F.slice_axis(F.reshape(flat, (0, T, E + 1)), axis=2, begin=0, end=K))  # B,T,dx
    volume = F.reshape(F.stack(*bands, axis=2), (-1, K * K))              # N*H*W, dy*dx
    volume = F.reshape_like(volume, feat1, lhs_begin=0, lhs_end=1, rhs_begin=0,
                            rhs_end=3)                                    # N,H,W,dy*dx
    return F.transpose(volume, (0, 3, 1, 2))


class DeformableConv2D(nn.HybridBlock):
    """3x3 deformable convolution (padding 1) whose nine taps all move by one flow per pixel:
    ``forward(x, flow_yx)`` with the flow in pixels of ``x``, (y, x). It computes what MXNet's
    DeformableConvolution computes with that offset repeated for every tap, in values and
    gradients, as a plain convolution followed by a gather (``flow_shifted_conv``): faster
    than MXNet's kernel, whose im2col is single-threaded and whose matrix product runs on the
    BLAS (docs/performance.md, "Deformable convolution").

    ``border_strips``: compute it with border strips (see flow_shifted_conv); only for inputs of
    at least 4 x 4 (the finer levels: level L of a network input is at least 64 / 2^L wide).
    ``forward_only``: for a graph that never runs backward (see ``concat``).

    Its parameters are plain ``weight`` and ``bias`` attributes so that checkpoints name them
    ``deform5.weight`` / ``deform5.bias`` as the original does.
    """

    def __init__(self, channels, in_channels, use_bias=True, border_strips=False,
                 forward_only=False, **kwargs):
        super().__init__(**kwargs)
        self._channels = channels
        self._border_strips = border_strips
        self._forward_only = forward_only
        with self.name_scope():
            self.weight = self.params.get('weight', shape=(channels, in_channels, 3, 3))
            self.bias = self.params.get('bias', shape=(channels,), init='zeros') if use_bias else None

    def hybrid_forward(self, F, x, flow_yx, weight, bias=None):
        out = flow_shifted_conv(F, x, flow_yx, weight, self._channels, self._border_strips,
                                self._forward_only)
        if bias is not None:
            out = F.broadcast_add(out, F.reshape(bias, (1, -1, 1, 1)))
        return out


def flow_shifted_conv(F, x, flow_yx, weight, channels, border_strips=False, forward_only=False):
    """sum over taps d of weight[:, :, d] . x(p + d + flow(p)), no bias, sampled by MXNet's rules.

    MXNet's deformable convolution reads a tap at t = (h, w) as zero unless 0 <= h < H and
    0 <= w < W, and bilinearly inside, except that in [H-1, H) ([W-1, W)) it reads the last row
    (column). Per axis, with k = floor(q) and a = q - k for q = p + flow(p), the nine taps
    q + d share the fraction a, so tap k + d reads (1 - a) * low(k + d) + a * high(k + d) with
    low(j) = x(j) (zero outside) and high(j) = x(j + 1), except high(H - 1) = x(H - 1) and
    high(-1) = 0 (the two border rules). Summed over the taps with the weights, each of the
    four (row, column) combinations of low and high is a plain 3x3 convolution evaluated at
    k: the four convolutions' tables, then a gather of the four values at k per pixel, mixed by
    the bilinear weights of a. Exact in values and in the gradients of x, weight and flow (the
    flow's reaches the output through a).

    The tables come from one convolution of the four shifted copies of x, or, with
    ``border_strips`` (inputs of 4 x 4 and more), from one convolution of x and of thin strips
    at its borders: away from the borders, high is x one line on, and so is its table.
    ``forward_only``: for a graph that never runs backward (see ``concat``).
    """
    if border_strips:
        corner_tables = _corner_tables_by_strips(F, x, weight, channels, forward_only)
    else:
        corner_tables = _corner_tables(F, x, weight, channels)

    rows = F.reshape(F.contrib.arange_like(flow_yx, axis=2), (1, 1, -1, 1))
    cols = F.reshape(F.contrib.arange_like(flow_yx, axis=3), (1, 1, 1, -1))
    height, width = F.max(rows) + 1, F.max(cols) + 1
    q_y = F.broadcast_add(rows, F.slice_axis(flow_yx, axis=1, begin=0, end=1))   # N, 1, H, W
    q_x = F.broadcast_add(cols, F.slice_axis(flow_yx, axis=1, begin=1, end=2))
    k_y, k_x = F.floor(q_y), F.floor(q_x)
    a_y, a_x = q_y - k_y, q_x - k_x
    # k > -2 rather than k >= -1: the same test on floored values, and one that MXNet's ONNX
    # exporter translates (it has no _greater_equal_scalar).
    inside = F.broadcast_mul(F.broadcast_mul(k_y > -2, F.broadcast_lesser_equal(k_y, height)),
                             F.broadcast_mul(k_x > -2, F.broadcast_lesser_equal(k_x, width)))

    # Row indices in int32 (float32 counts exactly only to 2^24).
    as_int = lambda a: F.cast(a, 'int32')
    samples = as_int(F.reshape(F.contrib.arange_like(flow_yx, axis=0), (-1, 1, 1, 1)))
    line, plane = as_int(width + 2), as_int((height + 2) * (width + 2))
    index = F.broadcast_add(F.broadcast_mul(samples, plane),
                            F.broadcast_add(F.broadcast_mul(as_int(k_y) + 1, line), as_int(k_x) + 1))
    index = F.reshape(F.broadcast_mul(index, as_int(inside)), (0, -3, -2))          # N, H, W
    corner_weights = ((1 - a_y) * (1 - a_x), (1 - a_y) * a_x, a_y * (1 - a_x), a_y * a_x)
    terms = []
    for table, mix in zip(corner_tables, corner_weights):
        values = F.take(F.reshape(table, (-1, channels)), index, axis=0)          # N, H, W, C
        terms.append(F.broadcast_mul(values, F.reshape(mix * inside, (0, -3, -2, 1))))
    return F.transpose(F.add_n(*terms), (0, 3, 1, 2))


def _table(F, x, weight, channels):
    """x's 3x3 convolution at every k from -1 to H (W), channel-last (N, H + 2, W + 2, C):
    oneDNN holds convolution outputs channel-last already, and a gather of whole rows is a
    fast copy."""
    conv = F.Convolution(x, weight, kernel=(3, 3), pad=(2, 2), num_filter=channels, no_bias=True)
    return F.transpose(conv, (0, 2, 3, 1))


def _corner_tables(F, x, weight, channels):
    """The tables of (low, low), (low, high), (high, low), (high, high) (rows, columns): one
    convolution call on the four copies stacked on the batch axis."""
    high_rows = _next_line(F, x, axis=2)
    stacked = concat(F, x, _next_line(F, x, axis=3), high_rows, _next_line(F, high_rows, axis=3),
                     axis=0)
    return _unstack(F, _table(F, stacked, weight, channels), 4)


def _corner_tables_by_strips(F, x, weight, channels, forward_only=False):
    """The tables of _corner_tables from x's table and strips at the borders (H, W >= 4).

    Per axis, high's table at k is low's at k + 1 for 1 <= k <= H - 3: there every tap of
    high reads x one line on. At k in {-1, 0} it reads high(-1) = 0 and at k >= H - 2
    high(H - 1) = x(H - 1): those come from convolutions of three-line strips of the high copy
    (high's lines 0-2 and its last three), which convolve as the whole copy does at those k.
    (high, high) takes its middle lines from (low, high), one line on. Besides x's, the
    convolutions are of 4 x 3 rows and 2 x 3 columns, against 3 x (H + 2) x (W + 2) positions.
    """
    low_low = _table(F, x, weight, channels)                             # N, H+2, W+2, C
    first_high = lambda axis: F.slice_axis(x, axis=axis, begin=1, end=4)       # high 0..2
    last_high = lambda axis: _next_line(F, F.slice_axis(x, axis=axis, begin=-3, end=None),
                                        axis)                                  # high H-3..H-1
    col_strips = _unstack(F, _table(F, concat(F, first_high(3), last_high(3), axis=0),
                                    weight, channels), 2)                # N, H+2, 5, C each
    first_rows, last_rows = first_high(2), last_high(2)
    rows = concat(F, first_rows, last_rows, _next_line(F, first_rows, 3),
                  _next_line(F, last_rows, 3), axis=0)
    row_strips = _unstack(F, _table(F, rows, weight, channels), 4)       # N, 5, W+2, C each

    def assemble(first, middle_of, last, axis):
        """k -1, 0 from the first strip, 1..H-3 from ``middle_of`` at k + 1, H-2..H from the
        last strip (table row r holds k = r - 1; a strip's output row s holds k = s - 1 from
        its first line)."""
        return concat(F, F.slice_axis(first, axis=axis, begin=0, end=2),
                      F.slice_axis(middle_of, axis=axis, begin=3, end=-2),
                      F.slice_axis(last, axis=axis, begin=2, end=5), axis=axis,
                      onednn=forward_only)

    low_high = assemble(col_strips[0], low_low, col_strips[1], axis=2)
    high_low = assemble(row_strips[0], low_low, row_strips[1], axis=1)
    high_high = assemble(row_strips[2], low_high, row_strips[3], axis=1)
    return low_low, low_high, high_low, high_high


def _unstack(F, stacked, parts):
    """(parts x N, ...) -> ``parts`` arrays of (N, ...), in order."""
    split = F.reshape(stacked, (-4, parts, -1, -2))
    return [F.reshape(F.slice_axis(split, axis=0, begin=i, end=i + 1), (-3, -2))
            for i in range(parts)]


def _next_line(F, x, axis):
    """x shifted by one line towards the start along ``axis`` (2: rows, 3: columns), the last
    line repeated: ``high`` of flow_shifted_conv."""
    pad_width = [0] * 8
    pad_width[2 * axis + 1] = 1
    return F.slice_axis(F.pad(x, mode='edge', pad_width=tuple(pad_width)), axis=axis, begin=1,
                        end=None)


class Warp(nn.HybridBlock):
    """Backward warp of ``img`` by a (y, x) pixel flow with bilinear sampling.

    Samples outside the image read zeros. With ``clip_grid`` the sampling grid is clipped to
    the image first, so outside samples repeat the border (the original's
    ``Reconstruction2DSmooth``, used for the ``warped`` output of prediction).
    """

    def __init__(self, clip_grid=False, **kwargs):
        super().__init__(**kwargs)
        self.clip_grid = clip_grid

    def hybrid_forward(self, F, img, flow_yx):
        grid = F.GridGenerator(F.flip(flow_yx, axis=1), transform_type='warp')
        if self.clip_grid:
            grid = F.clip(grid, -1, 1)
        return F.BilinearSampler(img, grid)
