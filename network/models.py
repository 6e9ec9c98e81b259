"""MaskFlownet-S and MaskFlownet (Zhao et al., CVPR 2020) as Gluon HybridBlocks.

Attribute names (``conv1a``, ``conv6_0``, ``upfeat5``, ``deform4``, ...) are the checkpoint
contract: Gluon saves parameters under their attribute paths, so they must not change.

Conventions inside the networks, all kept for compatibility with the original checkpoints,
whose weights learned them: flows are (y, x), the order of MXNet's deformable-convolution
offsets, and carried divided by 20 (times ``flow_multiplier``); the predictions returned to the
caller are multiplied back, in pixels of the network input at every level.
"""
from mxnet.gluon import nn

from .layers import (CHANNEL_ALIGN, DeformableConv2D, Upsample, Warp, alignment_padding,
                     concat_aligned, conv_block, correlation, deconv_block, predict_conv)

LEVELS = (6, 5, 4, 3, 2)          # decoder levels, coarse to fine
STRIDES = (64, 32, 16, 8, 4)      # stride (px) of each decoder level
PYRAMID_CHANNELS = (16, 32, 64, 96, 128, 196)   # feature channels at levels 1..6
DENSE_CHANNELS = (128, 128, 96, 64, 32)         # convs of one densely connected decoder
# tiled_correlation's tile per level (see layers): the fastest measured that divides every width
# the level can have (the network input is a multiple of 64 wide: level L is 64 / 2^L times k).
CORRELATION_TILE = {2: 8, 3: 8, 4: 4}
# A graph exported to ONNX (``portable``) tiles levels 6 and 5 too: ONNX has no correlation
# operator, and tiles of 1 and 2 divide every width those levels can have.
PORTABLE_CORRELATION_TILE = {**CORRELATION_TILE, 5: 2, 6: 1}
CONTEXT_LAYERS = ((128, 1), (128, 2), (128, 4), (96, 8), (64, 16), (32, 1))  # (channels, dilation)


def _stride(level):
    return 2 ** level


class _PyramidFlowNet(nn.HybridBlock):
    """Layer factories and forward pieces shared by both networks."""

    def __init__(self, max_displacement, flow_multiplier=1.0, deform_bias=True,
                 upfeat_ch=(16, 16, 16, 16), channel_align=CHANNEL_ALIGN, forward_only=False,
                 portable=False, **kwargs):
        super().__init__(**kwargs)
        self.md = max_displacement
        self.scale = 20. * flow_multiplier
        self.strides = list(STRIDES)
        self.deform_bias = deform_bias
        # upfeat_ch lists the channels of upfeat5, upfeat4, upfeat3, upfeat2.
        self.upfeat_ch = dict(zip((5, 4, 3, 2), upfeat_ch))
        self.corr_channels = (2 * max_displacement + 1) ** 2
        self.upsample2 = Upsample(2)
        self.upsample4 = Upsample(4)
        # Zero channels after each decoder's input, making every dense input a multiple of
        # channel_align (the dense channels are multiples of 16 already): see
        # layers.CHANNEL_ALIGN and INFERENCE_CHANNEL_ALIGN. Parameters do not depend on it.
        self.channel_align = channel_align
        # A graph that never runs backward concatenates with oneDNN's kernel (layers.concat).
        self.forward_only = forward_only
        # A graph for export to ONNX (network/portable.py): every correlation tiled.
        self.correlation_tile = PORTABLE_CORRELATION_TILE if portable else CORRELATION_TILE
        self.decoder_padding = {}
        self.dense_channels = {}   # real (unpadded) channels of each decoder's dense features

    # --- construction -------------------------------------------------------------------

    def _add_pyramid(self, suffixes, in_channels):
        """Three 3x3 convs per level (the first with stride 2): ``conv{level}{suffix}``."""
        for level, channels in enumerate(PYRAMID_CHANNELS, start=1):
            for i, suffix in enumerate(suffixes):
                setattr(self, 'conv%d%s' % (level, suffix),
                        conv_block(channels, in_channels, stride=2 if i == 0 else 1))
                in_channels = channels

    def _add_decoder(self, level, in_channels):
        """Densely connected convs ``conv{level}_{0..4}``; returns the decoder's out channels.

        The decoder's input arrives with ``decoder_padding[level]`` zero channels appended
        (``concat_aligned``); every layer reading the dense features expects them.
        """
        pad = self.decoder_padding[level] = alignment_padding(in_channels, self.channel_align)
        for i, channels in enumerate(DENSE_CHANNELS):
            setattr(self, 'conv%d_%d' % (level, i), conv_block(channels, in_channels, pad_in=pad))
            in_channels += channels
        setattr(self, 'pred_flow%d' % level, predict_conv(2, in_channels, pad_in=pad,
                                                             by_taps=self.forward_only))
        if level > 2:   # reads the dense features without their padding (see _upfeat)
            setattr(self, 'upfeat%d' % (level - 1),
                    deconv_block(self.upfeat_ch[level - 1], in_channels))
        self.dense_channels[level] = in_channels
        return in_channels

    def _add_context(self, in_channels):
        """Dilated-convolution context network ``dc_conv1..7`` refining the finest flow."""
        pad = self.decoder_padding[2]   # the context network reads the finest dense features
        for i, (channels, dilation) in enumerate(CONTEXT_LAYERS, start=1):
            setattr(self, 'dc_conv%d' % i, conv_block(channels, in_channels, padding=dilation,
                                                      dilation=dilation, pad_in=pad))
            in_channels, pad = channels, 0
        self.dc_conv7 = predict_conv(2, in_channels, by_taps=self.forward_only)

    def _add_deform(self, level):
        channels = PYRAMID_CHANNELS[level - 1]
        # Border strips from level 4 down: network inputs are multiples of 64 (at least
        # 64 x 64), so level L is at least 64 / 2^L = 4 lines there.
        setattr(self, 'deform%d' % level,
                DeformableConv2D(channels, channels, use_bias=self.deform_bias,
                                 border_strips=level <= 4, forward_only=self.forward_only))

    # --- forward pieces -----------------------------------------------------------------

    def _layer(self, name):
        return getattr(self, name)

    def _pyramid(self, img, suffixes):
        feats = []
        x = img
        for level in range(1, 7):
            for suffix in suffixes:
                x = self._layer('conv%d%s' % (level, suffix))(x)
            feats.append(x)
        return feats

    def _concat_channels(self, F, *parts, padding=0):
        return concat_aligned(F, *parts, padding=padding, onednn=self.forward_only)

    def _dense(self, F, level, x):
        for i in range(len(DENSE_CHANNELS)):
            x = self._concat_channels(F, self._layer('conv%d_%d' % (level, i))(x), x)
        return x

    def _context(self, x):
        for i in range(1, 8):
            x = self._layer('dc_conv%d' % i)(x)
        return x

    def _deform_warp(self, F, level, feat, flow):
        """Warp ``feat`` by ``flow`` (net units, (y, x)) with the level's deformable conv."""
        return self._layer('deform%d' % level)(feat, flow * self.scale / _stride(level))

    def _upfeat(self, F, level, x):
        """``upfeat{level}`` of the coarser level's dense features ``x``. oneDNN's transposed
        convolution fails on a computed (zero-padded) weight, so it gets the real channels.
        (A 3x3 convolution with depth_to_space on the padded features computes the same and
        was slower: 2.25x the multiply-adds, and the weight rebuilt at every call.)"""
        if self.decoder_padding[level + 1]:
            x = F.slice_axis(x, axis=1, begin=0, end=self.dense_channels[level + 1])
        return self._layer('upfeat%d' % level)(x)

    def _corr(self, F, level, feat1, feat2):
        tile = self.correlation_tile.get(level)
        return F.LeakyReLU(correlation(F, feat1, feat2, self.md, PYRAMID_CHANNELS[level - 1],
                                       tile, self.forward_only), slope=0.1)


class MaskFlownet_S(_PyramidFlowNet):
    """Single-pyramid MaskFlownet with asymmetric occlusion-aware feature matching.

    ``forward(im1, im2)`` returns ``(predictions, occlusion_masks, sources)``:
    predictions are the flows at strides 64..4 in pixels, (y, x); ``occlusion_masks[0]`` is
    the learnable mask at stride 4 in [0, 1]; ``sources`` feeds the cascade of MaskFlownet,
    and is computed only with ``cascade=True`` (an empty list otherwise: the full-resolution
    warp and mask it holds cost time that a standalone MaskFlownet-S does not need).
    """

    def __init__(self, cascade=False, **kwargs):
        super().__init__(max_displacement=4, **kwargs)
        self.cascade = cascade
        with self.name_scope():
            self._add_pyramid('abc', 3)
            for level in LEVELS:
                in_channels = self.corr_channels
                if level < 6:
                    in_channels += PYRAMID_CHANNELS[level - 1] + self.upfeat_ch[level] + 2
                    self._add_deform(level)
                    # conv{level}f: the trade-off term added to the masked warped features.
                    setattr(self, 'conv%df' % level, conv_block(
                        PYRAMID_CHANNELS[level - 1], self.upfeat_ch[level], activation=False))
                out_channels = self._add_decoder(level, in_channels)
                if level > 2:
                    setattr(self, 'pred_mask%d' % level,
                            predict_conv(1, out_channels, pad_in=self.decoder_padding[level],
                                         by_taps=self.forward_only))
            self._add_context(out_channels)
            self.warp = Warp()

    def hybrid_forward(self, F, im1, im2):
        c1 = self._pyramid(im1, 'abc')
        c2 = self._pyramid(im2, 'abc')
        flows = []
        x = flow = mask = None
        for level in LEVELS:
            f1, f2 = c1[level - 1], c2[level - 1]
            pad = self.decoder_padding[level]
            if level == 6:
                x = self._dense(F, level, self._concat_channels(F, self._corr(F, level, f1, f2),
                                                                padding=pad))
            else:
                feat = self._upfeat(F, level, x)
                flow = self.upsample2(flow)
                mask = self.upsample2(mask)
                warped = self._deform_warp(F, level, f2, flow)
                # The asymmetric matching: features of image 2 are warped, gated by the
                # learnable occlusion mask, and completed by a trade-off term.
                warped = F.broadcast_mul(warped, F.sigmoid(mask)) + self._layer('conv%df' % level)(feat)
                warped = F.LeakyReLU(warped, slope=0.1)
                x = self._concat_channels(F, self._corr(F, level, f1, warped), f1, feat, flow,
                                          padding=pad)
                x = self._dense(F, level, x)
            residual = self._layer('pred_flow%d' % level)(x)
            flow = residual if level == 6 else flow + residual
            if level > 2:
                mask = self._layer('pred_mask%d' % level)(x)
            if level == 2:
                flow = flow + self._context(x)
            flows.append(flow)

        predictions = [f * self.scale for f in flows]
        occlusion_masks = [F.sigmoid(mask)]
        if not self.cascade:
            return predictions, occlusion_masks, []
        mask_full = F.sigmoid(self.upsample4(mask)) - 0.5
        stage2_input1 = self._concat_channels(F, im1, F.zeros_like(mask_full))
        stage2_input2 = self._concat_channels(
            F, self.warp(im2, self.upsample4(flow) * self.scale), mask_full)
        # The original's feature mix-up, kept for compatibility with its MaskFlownet checkpoints
        # (its cascade learned with it): the cascade warps image 1's features at levels 2 and 3.
        c2_for_cascade = [c2[0], c1[1], c1[2], c2[3], c2[4], c2[5]]
        sources = [c1, c2_for_cascade, flows, stage2_input1, stage2_input2]
        return predictions, occlusion_masks, sources


class MaskFlownet(_PyramidFlowNet):
    """MaskFlownet: a second, dual-pyramid stage cascaded on a MaskFlownet-S head.

    ``forward(im1, im2)`` returns ``(predictions, occlusion_masks, head_predictions)``. The
    occlusion mask is the head's: only the MaskFlownet-S stage learns one. (The original
    returned the cascade's unscaled y-flow channel there; that bug is fixed, no weight depends
    on it.)
    """

    def __init__(self, prefix=None, params=None, **kwargs):
        super().__init__(max_displacement=2, prefix=prefix, params=params, **kwargs)
        with self.name_scope():   # the head takes the network's settings, not its Block's
            self.MaskFlownet_S = MaskFlownet_S(cascade=True, **kwargs)
            self._add_pyramid('xyz', 4)
            for level in LEVELS:
                in_channels = 2 * self.corr_channels + 2
                if level < 6:
                    in_channels += PYRAMID_CHANNELS[level - 1] + self.upfeat_ch[level] + 2
                self._add_deform(level)
                out_channels = self._add_decoder(level, in_channels)
            self._add_context(out_channels)

    @property
    def head(self):
        return self.MaskFlownet_S

    def hybrid_forward(self, F, im1, im2):
        head_predictions, head_occlusion_masks, sources = self.MaskFlownet_S(im1, im2)
        c1, c2, head_flows, stage2_input1, stage2_input2 = sources
        c3 = self._pyramid(stage2_input1, 'xyz')
        c4 = self._pyramid(stage2_input2, 'xyz')
        flows = []
        x = flow = None
        for i, level in enumerate(LEVELS):
            head_flow = head_flows[i]
            flow = head_flow if level == 6 else self.upsample2(flow)
            warped = F.LeakyReLU(self._deform_warp(F, level, c2[level - 1], flow), slope=0.1)
            corr_u = self._corr(F, level, c1[level - 1], warped)
            corr_v = self._corr(F, level, c3[level - 1], c4[level - 1])
            pad = self.decoder_padding[level]
            if level == 6:
                x = self._concat_channels(F, corr_u, corr_v, flow, padding=pad)
            else:
                feat = self._upfeat(F, level, x)
                x = self._concat_channels(F, c1[level - 1], feat, corr_u, corr_v, flow,
                                          head_flow, padding=pad)
            x = self._dense(F, level, x)
            flow = flow + self._layer('pred_flow%d' % level)(x)
            if level == 2:
                flow = flow + self._context(x)
            flows.append(flow)

        predictions = [f * self.scale for f in flows]
        return predictions, head_occlusion_masks, head_predictions
