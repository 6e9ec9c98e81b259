"""The whole prediction of one image size as a single graph, for export to ONNX
(engine/onnx_export.py): uint8 images in, flow in (x, y) pixels and occlusion mask out, with
every convention of ``network.conventions`` inside, so that a runtime without MXNet computes
what ``Pipeline.predict`` does.

Inside the graph, in the order ``Pipeline.do_batch`` runs them:

* uint8 -> float in [0, 1] (x / 255), NHWC -> NCHW;
* centring by the per-sample, per-channel mean of both images together;
* the resize (bilinear, align_corners) to the network size, when it differs from the image size;
* the network (built ``portable``: see models), its finest flow and its occlusion mask;
* the 4x upsampling (layers.Upsample), the resize back to the image size with the flow's
  vectors rescaled to its pixels, the (y, x) -> (x, y) flip, NCHW -> NHWC.

Outside it: reading the images and their channel order (the graph takes the channels in the
order the caller gives them, as Pipeline.predict does), and the batch (one pair per call).
"""
from mxnet.gluon import nn

from .conventions import network_size
from .layers import CHANNEL_ALIGN, Upsample
from .models import STRIDES
from .pipeline import build_network

INPUT_NAMES = ('image_1', 'image_2')
OUTPUT_NAMES = ('flow', 'occ_mask')


class PortablePrediction(nn.HybridBlock):
    """``forward(image_1, image_2)`` on (1, H, W, 3) uint8 images of ``image_size`` = (H, W):
    (flow (1, H, W, 2) float32 in (x, y) pixels, occlusion mask (1, H, W, 1) in [0, 1])."""

    def __init__(self, network, image_size, resize=None, **kwargs):
        super().__init__(**kwargs)
        self.image_size = tuple(image_size)
        self.network_size = network_size(self.image_size, resize)
        with self.name_scope():
            self.network = network
            self.upsample = Upsample(STRIDES[-1])

    def hybrid_forward(self, F, image_1, image_2):
        img1, img2 = (F.transpose(F.cast(img, 'float32'), (0, 3, 1, 2)) / 255.0
                      for img in (image_1, image_2))
        # conventions.centralize's mean, the same way: row means first. One mean over all of
        # both images (onnxruntime's ReduceMean, a float32 sum of 900,000 values at Sintel size)
        # was off by 1e-5, which the network amplified to 0.07 px (with random weights).
        width = self.image_size[1]
        row_means = [F.Pooling(img, kernel=(1, width), stride=(1, width), pool_type='avg')
                     for img in (img1, img2)]
        rgb_mean = F.mean(F.concat(*row_means, dim=2), axis=(2, 3), keepdims=True)
        img1, img2 = F.broadcast_sub(img1, rgb_mean), F.broadcast_sub(img2, rgb_mean)
        img1, img2 = (self._resize(F, img, self.network_size) for img in (img1, img2))
        predictions, occ_masks, _ = self.network(img1, img2)
        flow_yx = self._resize(F, self.upsample(predictions[-1]), self.image_size)
        occ_mask = self._resize(F, self.upsample(occ_masks[0]), self.image_size)
        # conventions.resize_flow's rescaling, then the flip that only outputs take
        (height, width), (net_height, net_width) = self.image_size, self.network_size
        flow_y = F.slice_axis(flow_yx, axis=1, begin=0, end=1)
        flow_x = F.slice_axis(flow_yx, axis=1, begin=1, end=2)
        if (height, width) != (net_height, net_width):
            flow_y, flow_x = flow_y * (height / net_height), flow_x * (width / net_width)
        flow_xy = F.concat(flow_x, flow_y, dim=1)
        return F.transpose(flow_xy, (0, 2, 3, 1)), F.transpose(occ_mask, (0, 2, 3, 1))

    def _resize(self, F, img, size):
        """conventions.resize_images for one NCHW array: both resizes, or neither."""
        if self.image_size == self.network_size:
            return img
        return F.contrib.BilinearResize2D(img, height=size[0], width=size[1])


def portable_prediction(config, network, image_size, resize=None):
    """The PortablePrediction of ``config``'s network, sharing the parameters (and their names)
    of ``network`` (a Pipeline's). It is the inference graph, with its predictions by taps, but
    with every correlation tiled (models.PORTABLE_CORRELATION_TILE) and the decoders' inputs
    padded to whole blocks of 16 channels on every CPU: onnxruntime's fast (NCHWc) convolution
    kernels, like oneDNN's training kernels, take only those (on a 2-core Zen 5, the level-2
    decoder ran 1.5x faster so)."""
    portable = build_network(config, channel_align=CHANNEL_ALIGN, forward_only=True, portable=True,
                             prefix=network.prefix, params=network.collect_params())
    return PortablePrediction(portable, image_size, resize)
