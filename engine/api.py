"""The Python API: load a network by config and checkpoint, get flow and occlusion mask for
numpy image pairs. predict_new_data.py is a command line over it; see docs/api.md.

    from engine.api import load_model
    model = load_model('MaskFlownet.yaml', '5adNov03', download=True)
    flow, occ = model.predict(img1, img2)            # images as cv2.imread gives them (BGR)
    flows, occs = model.predict_batch(img1s, img2s)

Inference goes through one small interface, a *backend*: an object with

* ``predict(img1s, img2s, batch_size=1, resize=None)``, yielding ``(flow, occ_mask, _)`` per
  pair: flow H x W x 2 float32 in (x, y) px, occ_mask H x W x 1 (1 = visible in both images),
  for lists of H x W x 3 uint8 BGR images, ``resize`` an (H, W) network size or None (each
  side rounded up to a multiple of 64);
* ``device_type``: 'cpu' or 'gpu' (which batch suits it).

``network.pipeline.Pipeline`` (MXNet) is the one backend today; ``Model(backend)`` takes any
other with the same two members.
"""
from typing import NamedTuple, Optional

import numpy as np

from common.config import load_config
from common.errors import UserError
from common.options import DEFAULT_VIDEO_BATCH, check_side, parse_resize
from network.conventions import occ_mask_image

from . import published
from .runs import WEIGHTS_DIR, find_checkpoint, find_or_download

CHANNEL_ORDERS = ('bgr', 'rgb')


class Loaded(NamedTuple):
    """Where a model's weights came from."""
    config: str                    # the network config file
    checkpoint: str                # the .params file
    run_id: Optional[str]
    steps: int


class Model:
    """A network ready to predict: ``predict`` for a pair, ``predict_batch`` for many.

    ``backend``: see the module docstring. ``loaded``: where its weights came from (None for
    a backend built elsewhere).
    """

    def __init__(self, backend, loaded=None):
        self.backend = backend
        self.loaded = loaded

    @property
    def default_batch(self):
        """Pairs per network call when none is given: 2 on the CPU, 8 on GPUs (the video
        mode's measured defaults, docs/performance.md)."""
        return DEFAULT_VIDEO_BATCH[self.backend.device_type]

    def predict(self, img1, img2, resize=None, channel_order='bgr'):
        """(flow, occ) from ``img1`` to ``img2``: flow H x W x 2 float32, (x, y) in pixels;
        occ H x W float32 in [0, 1], 1 where a pixel is visible in both images (the
        command line's ``--occ_mask`` image is ``round(occ * 255)``).

        Images: H x W x 3 uint8 arrays in ``channel_order`` ('bgr', as cv2.imread gives them
        and as the command line feeds them; or 'rgb'), or H x W grayscale; the two of one size.
        ``resize``: the network size (H, W) in multiples of 64, or 'H,W'; by default each
        side is rounded up to a multiple of 64 and the images resized to it, as the original
        does; the flow always comes back at the images' own size.
        """
        flows, occs = self.predict_batch([img1], [img2], batch_size=1, resize=resize,
                                         channel_order=channel_order)
        return flows[0], occs[0]

    def predict_batch(self, img1s, img2s, batch_size=None, resize=None, channel_order='bgr'):
        """([flow], [occ]) for lists of pairs (or N x H x W x 3 arrays), as ``predict``;
        ``batch_size`` pairs of one size go through the network at once (the model's
        ``default_batch`` by default). The pairs may differ in size from each other."""
        return [list(values) for values in zip(*self.iter_predict(
            img1s, img2s, batch_size, resize, channel_order))] or [[], []]

    def iter_predict(self, img1s, img2s, batch_size=None, resize=None, channel_order='bgr'):
        """Yield (flow, occ) pair by pair, as ``predict_batch`` returns them: pairs of one
        size in a row are batched together, and only a batch's results are held at a time."""
        img1s = [_as_bgr(image, channel_order, 'img1s[%d]' % k) for k, image in enumerate(img1s)]
        img2s = [_as_bgr(image, channel_order, 'img2s[%d]' % k) for k, image in enumerate(img2s)]
        if len(img1s) != len(img2s):
            raise UserError('got %d first images but %d second images' % (len(img1s), len(img2s)))
        for k, (a, b) in enumerate(zip(img1s, img2s)):
            if a.shape != b.shape:
                raise UserError('pair %d: the images differ in size (%dx%d and %dx%d)'
                                % (k, a.shape[1], a.shape[0], b.shape[1], b.shape[0]))
        resize = parse_resize(resize)
        batch_size = self.default_batch if batch_size is None else batch_size
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 1:
            raise UserError('batch_size %r: must be a whole number, 1 or more' % (batch_size,))
        start = 0
        while start < len(img1s):
            stop = start + 1   # a run of pairs of one size, at most batch_size of them
            while (stop < len(img1s) and stop - start < batch_size
                   and img1s[stop].shape == img1s[start].shape):
                stop += 1
            for flow, occ_mask, _ in self.backend.predict(img1s[start:stop], img2s[start:stop],
                                                          batch_size=batch_size, resize=resize):
                yield flow, occ_image_values(occ_mask)
            start = stop


def occ_image_values(occ_mask):
    """A backend's H x W x 1 occlusion mask as the API gives it: H x W float32 in [0, 1]."""
    return np.clip(occ_mask[..., 0], 0, 1).astype(np.float32)


def occ_image(occ):
    """The API's occlusion mask as the command line writes it: H x W uint8, 255 = visible."""
    return occ_mask_image(occ[..., None])


def _as_bgr(image, channel_order, what):
    if channel_order not in CHANNEL_ORDERS:
        raise UserError("channel_order %r: must be 'bgr' or 'rgb'" % (channel_order,))
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise UserError('%s: images must be uint8 arrays (0 to 255), got %s' % (what, image.dtype))
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
        raise UserError('%s: expected an H x W x 3 (or H x W) image, got shape %s'
                        % (what, image.shape))
    check_side(what, image.shape)
    # BGR goes in, as the original's predict_new_data.py fed it (network.conventions)
    return np.ascontiguousarray(image[..., ::-1] if channel_order == 'rgb' else image)


def parse_device(device):
    """'cpu', 'gpu' (GPU 0), 'gpu:N' or the command lines' -g spelling ('', '0', '0,1')."""
    from common.devices import parse_devices
    if isinstance(device, (list, tuple)) and device:   # MXNet contexts, as parse_devices gives
        return list(device)
    return parse_devices(_gpu_spec(device))


def load_model(config, checkpoint, device='cpu', download=False, weights_dir=WEIGHTS_DIR,
               backend='mxnet', backend_device=None):
    """A ``Model`` of the network ``config`` (a name in config/ such as 'MaskFlownet.yaml', or
    a path) with the weights ``checkpoint`` names: a .params path, a run id prefix in
    ``weights_dir`` with an optional ':STEPS', or a published checkpoint of the original
    ('5adNov03', ...), which ``download=True`` fetches into ``weights_dir`` (verified) when it
    is not there yet. ``device``: 'cpu', 'gpu', 'gpu:N'. ``backend``: 'mxnet', or
    'onnxruntime' (models exported once per image size and cached, docs/onnx.md; no MXNet is
    loaded when they are cached). Problems raise ``UserError`` with a one-line message, as the
    command lines print them."""
    from .onnx_backend import OnnxPipeline, check_backend
    if backend != 'mxnet':
        backend_device = backend_device or check_backend(backend, _gpu_spec(device))
    network_config = load_config(config, 'network')
    if download:
        path, run_id, steps = find_or_download(checkpoint, network_config.network_class,
                                               weights_dir, config_source=network_config.source)
    else:
        path, run_id, steps = find_checkpoint(checkpoint, weights_dir)
    if backend != 'mxnet':
        pipe = OnnxPipeline(network_config, path, backend_device)
    else:
        pipe = published.loaded_pipeline(network_config, path, parse_device(device))
    return Model(pipe, Loaded(network_config.source, path, run_id, steps))


def _gpu_spec(device):
    """``device`` ('cpu', 'gpu', 'gpu:N', a GPU number or ids) as the command lines' -g
    spells it."""
    if device in (None, '', 'cpu'):
        return ''
    if device == 'gpu':
        return '0'
    if isinstance(device, int) and not isinstance(device, bool):
        return str(device)
    if isinstance(device, str):
        return device[len('gpu:'):] if device.startswith('gpu:') else device
    raise UserError("device %r: expected 'cpu', 'gpu', 'gpu:N' or GPU ids such as '0,1'"
                    % (device,))
