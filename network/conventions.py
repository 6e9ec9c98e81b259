"""The network's input and output conventions, in one place for training, validation and
prediction alike. All are kept for compatibility with the original checkpoints, which were
trained and published with exactly these inputs:

* images go in as float [0, 1] (uint8 / 255), centred by the per-sample, per-channel mean of
  both images together;
* they are *resized* (bilinear, align_corners) to a multiple of 64 (or ``--resize``), never
  padded, and the flow is resized back with its vectors rescaled;
* flows are (y, x) inside the network, the order of MXNet's deformable-convolution offsets;
  files, labels and outputs are (x, y);
* valid masks are uint8 0/255 on disk and weights in [0, 1] in the loss;
* the occlusion mask leaves as a grayscale image, white = visible in both frames.
"""
import numpy as np

from common.errors import UserError
from common.options import SIZE_MULTIPLE

# MXNet is imported in the functions that use it: the onnxruntime backend (engine/onnx_backend.py)
# uses the others without loading MXNet.


def unit_images(*images_uint8):
    """uint8 images (NDArrays) as float in [0, 1]."""
    return tuple(image / 255.0 for image in images_uint8)


def mask_weights(mask_uint8):
    """A 0/255 valid mask (NDArray) as loss weights in [0, 1]."""
    return mask_uint8 / 255.0


def full_mask(shape_hw, leading=()):
    """A uint8 mask that marks every pixel valid, shaped ``leading + (H, W)`` with a channel."""
    if leading:
        return np.full(tuple(leading) + (1,) + tuple(shape_hw), 255, dtype=np.uint8)
    return np.full(tuple(shape_hw) + (1,), 255, dtype=np.uint8)


def flow_yx(flow_xy):
    """(N, 2, H, W) (x, y) flow -> the network's (y, x) order, as float32."""
    from mxnet import nd
    return nd.flip(flow_xy.astype('float32', copy=False), axis=1)


def flow_xy_images(flow_yx_nchw):
    """(N, 2, H, W) (y, x) flow (numpy) -> (N, H, W, 2) (x, y): only outputs leave (y, x)."""
    return flow_yx_nchw.transpose(0, 2, 3, 1)[..., ::-1]


def centralize(img1, img2):
    """Subtract the per-sample, per-channel mean of both images together."""
    from mxnet import nd
    # Row means first (a pooling: oneDNN's, fast), then their mean: much faster than one mean
    # over both axes, which MXNet reduces on one thread, and as exact.
    width = img1.shape[3]
    row_means = [nd.Pooling(img, kernel=(1, width), stride=(1, width), pool_type='avg')
                 for img in (img1, img2)]
    rgb_mean = nd.concat(*row_means, dim=2).mean(axis=(2, 3)).reshape((-2, 1, 1))
    return img1 - rgb_mean, img2 - rgb_mean, rgb_mean


def network_size(shape, resize=None):
    """The (H, W) the network runs at: ``resize`` or each side rounded up to a multiple of 64."""
    if resize is not None:
        return tuple(resize)
    return tuple(-(-s // SIZE_MULTIPLE) * SIZE_MULTIPLE for s in shape)


def resize_images(size, *images):
    """NCHW images bilinearly resized (align_corners) to ``size`` = (H, W), if not that size."""
    from mxnet import nd
    height, width = size
    if tuple(images[0].shape[2:]) == (height, width):
        return images
    return tuple(nd.contrib.BilinearResize2D(image, height=height, width=width) for image in images)


def resize_flow(flow, size):
    """An NCHW flow resized to ``size`` = (H, W), its vectors rescaled to the new pixels."""
    from mxnet import nd
    height, width = size
    net_height, net_width = flow.shape[2:]
    if (net_height, net_width) == (height, width):
        return flow
    factors = nd.array([height / net_height, width / net_width], ctx=flow.context)
    return nd.contrib.BilinearResize2D(flow, height=height, width=width) * factors.reshape((1, 2, 1, 1))


def occ_mask_image(occ_mask):
    """(H, W, 1) mask in [0, 1] -> (H, W) uint8 grayscale, white = visible in both images."""
    return np.round(np.clip(occ_mask[..., 0], 0, 1) * 255).astype(np.uint8)


def check_pairs(img1s, img2s):
    """Raise UserError unless the two lists pair up H x W x 3 images of one size each."""
    if len(img1s) != len(img2s):
        raise UserError('got %d first images but %d second images' % (len(img1s), len(img2s)))
    for k, (a, b) in enumerate(zip(img1s, img2s)):
        if a.shape != b.shape:
            raise UserError('pair %d: images differ in size (%s vs %s)' % (k, a.shape, b.shape))
        if a.ndim != 3 or a.shape[2] != 3:
            raise UserError('pair %d: expected H x W x 3 images, got %s' % (k, a.shape))
