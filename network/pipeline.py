"""Build a network from a config and run it the way the original MaskFlownet does.

``Pipeline`` owns the network, its devices, checkpoint loading/saving, the multi-scale loss,
and inference: ``predict`` (the entry for images) and ``labelled_batches`` (for metrics) over
``do_batch``. Images come in as uint8 H x W x 3 arrays; flows go out as float32 H x W x 2 in
(x, y) pixels.
"""
import numpy as np
import mxnet as mx
from mxnet import gluon

from common.errors import UserError

from . import checkpoint
from .conventions import (centralize, check_pairs, flow_xy_images, flow_yx,
                          full_mask, mask_weights, network_size, resize_flow, resize_images,
                          unit_images)
from .layers import CHANNEL_ALIGN, INFERENCE_CHANNEL_ALIGN, Upsample, Warp
from .losses import MULTISCALE_WEIGHTS, EpeLossWithMask, MultiscaleEpe
from .models import MaskFlownet, MaskFlownet_S

NETWORKS = {'MaskFlownet_S': MaskFlownet_S, 'MaskFlownet': MaskFlownet}


def build_network(config, channel_align=CHANNEL_ALIGN, forward_only=False, portable=False,
                  **block_kwargs):
    """The config's network (checked when it was read: common.schema); ``block_kwargs``
    (prefix, params) go to Gluon's Block. ``forward_only``: a graph that will never run
    backward (see layers.concat). ``portable``: a graph for export to ONNX (see models)."""
    network = config.network
    return NETWORKS[config.network_class](
        flow_multiplier=network.flow_multiplier.get(None) or 1.,
        deform_bias=network.deform_bias.get(True) is not False,
        upfeat_ch=network.upfeat_ch.get(None) or [16, 16, 16, 16],
        channel_align=channel_align, forward_only=forward_only, portable=portable,
        **block_kwargs)


class Pipeline:
    """A config's network on its devices, ready to train, predict and save.

    ``keep_graph_memory``: each graph keeps its memory and execution plan from call to call
    (static_alloc, static_shape): faster inference, and flat training memory over a long run
    (see docs/performance.md, "Inference graph" and "Concatenation and training memory").
    Turn it off where many pipelines live at once.
    """

    def __init__(self, config, ctx=None, keep_graph_memory=True):
        self.config = config
        self.keep_graph_memory = keep_graph_memory
        self.ctx = list(ctx) if ctx else [mx.cpu()]
        self.network_class = config.network_class
        self.network = build_network(config)
        self.network.initialize(init=mx.initializer.MSRAPrelu(slope=0.1), ctx=self.ctx)
        # Inference runs a graph of its own: oneDNN's inference kernels want another channel
        # padding than its training kernels (layers.INFERENCE_CHANNEL_ALIGN), and a graph
        # that only runs forward plans less memory. It holds the very Parameter objects of
        # the training graph, so loading, training and saving the one is the other. Both keep
        # their memory (keep_graph_memory; a new input size makes a new plan).
        self.inference_network = build_network(config, INFERENCE_CHANNEL_ALIGN, forward_only=True,
                                               prefix=self.network.prefix,
                                               params=self.network.collect_params())
        self._hybridize_graphs()
        self.strides = self.network.strides

        self.upsampler = Upsample(self.strides[-1])
        self.epe_with_mask = EpeLossWithMask()
        weights = config.network.mw.get(None) or list(MULTISCALE_WEIGHTS)
        q = config.optimizer.q.get(None)
        self.multiscale_epe = MultiscaleEpe(self.strides, weights, eps=1e-8, q=q)
        self.reconstruction = Warp(clip_grid=True)
        for block in (self.upsampler, self.epe_with_mask, self.multiscale_epe, self.reconstruction):
            block.hybridize()

    @property
    def device_type(self):
        """'cpu' or 'gpu': the kind of the devices it runs on (engine.api's backend member)."""
        return self.ctx[0].device_type

    # --- checkpoints ---------------------------------------------------------------------

    def load(self, path, arrays=None):
        checkpoint.load_checkpoint(self.network, path, self.network_class, arrays)

    def load_head(self, path, arrays=None):
        """Load a MaskFlownet_S checkpoint into the head of a MaskFlownet."""
        if self.network_class != 'MaskFlownet':
            raise UserError('load_head: %s has no MaskFlownet_S head' % self.network_class)
        checkpoint.load_checkpoint(self.network.head, path, 'the MaskFlownet_S head of MaskFlownet',
                                   arrays)

    def load_start_point(self, path, arrays=None):
        """Load the checkpoint a training run starts from; True if only the head was loaded.

        A MaskFlownet-S checkpoint given to MaskFlownet goes into its head: stage 2 of the
        schedule starts there. Anything else must fit the whole network. ``arrays``: the
        file's contents when the caller has read them already.
        """
        if arrays is None:
            arrays = checkpoint.read_checkpoint(path)
        head_only = (self.network_class == 'MaskFlownet'
                     and checkpoint.guess_network(arrays) == 'MaskFlownet_S')
        (self.load_head if head_only else self.load)(path, arrays)
        return head_only

    def fix_head(self):
        """Freeze the head (no gradients), as when training MaskFlownet's second stage."""
        for param in self.network.head.collect_params().values():
            param.grad_req = 'null'

    def save(self, path):
        checkpoint.save_checkpoint(self.network, path)

    def release_graph_memory(self):
        """Free the memory the two graphs keep between calls; the next call of each plans
        anew. Training calls it before and after validating, so that only the graph at work
        holds its memory."""
        self._hybridize_graphs()   # drops each graph's CachedOp, and its memory with it

    def _hybridize_graphs(self):
        keep = self.keep_graph_memory
        for network in (self.network, self.inference_network):
            network.hybridize(static_alloc=keep, static_shape=keep)

    # --- losses --------------------------------------------------------------------------

    def loss(self, predictions, labels_yx, masks):
        """Multi-scale loss per sample; labels already in (y, x), masks in [0, 1]."""
        return self.multiscale_epe(labels_yx, masks, *predictions)

    # --- inference -----------------------------------------------------------------------

    def run_network(self, img1, img2, resize=None):
        """Network outputs for images in [0, 1], (N, 3, H, W), centralized and resized."""
        img1, img2, _ = centralize(img1, img2)
        img1, img2 = resize_images(network_size(img1.shape[2:], resize), img1, img2)
        return self.inference_network(img1, img2)

    def do_batch(self, img1, img2, label=None, mask=None, resize=None, warped=False):
        """Flow (y, x) and occlusion mask at the input size, image 2 warped by the flow (None
        unless ``warped``), and the EPE (None without a label and mask)."""
        size = img1.shape[2:]
        predictions, occ_masks, _ = self.run_network(img1, img2, resize)
        flow = resize_flow(self.upsampler(predictions[-1]), size)
        occ_mask, = resize_images(size, self.upsampler(occ_masks[0]))
        warped = self.reconstruction(img2, flow) if warped else None
        epe = None
        if label is not None and mask is not None:
            epe = self.epe_with_mask(flow, label, mask)
        return flow, occ_mask, warped, epe

    def _batches(self, arrays, batch_size):
        """Yield per-device NCHW NDArray chunks of each list in ``arrays``, ``batch_size`` at a time."""
        size = len(arrays[0])
        for start in range(0, size, batch_size):
            chunk = [np.stack(a[start:start + batch_size]).transpose(0, 3, 1, 2) for a in arrays]
            ctx = self.ctx[:min(len(chunk[0]), len(self.ctx))]
            per_array = [gluon.utils.split_and_load(c, ctx, even_split=False) for c in chunk]
            yield list(zip(*per_array))

    def predict(self, img1s, img2s, batch_size=1, resize=None, warped=False):
        """Yield (flow (H,W,2) x-y px, occlusion mask (H,W,1), warped image 2 (H,W,3) in [0,1]
        or None unless ``warped``)."""
        check_pairs(img1s, img2s)
        for device_chunks in self._batches([img1s, img2s], batch_size):
            outputs = [self.do_batch(*unit_images(img1, img2), resize=resize, warped=warped)[:3]
                       for img1, img2 in device_chunks]
            flow, occ_mask = (np.concatenate([o[i].asnumpy() for o in outputs]) for i in range(2))
            flow = flow_xy_images(flow)
            occ_mask = occ_mask.transpose(0, 2, 3, 1)
            if warped:
                images = np.concatenate([o[2].asnumpy() for o in outputs]).transpose(0, 2, 3, 1)
            for k in range(len(flow)):
                yield np.ascontiguousarray(flow[k]), occ_mask[k], images[k] if warped else None

    def predict_pair(self, img1, img2, resize=None, warped=False):
        return next(self.predict([img1], [img2], batch_size=1, resize=resize, warped=warped))

    def labelled_batches(self, img1s, img2s, labels, masks=None, batch_size=1, resize=None):
        """Yield (flow, label, mask, epe) NDArrays per device batch, for the metrics of
        ``evaluate.per_sample_metrics``: flow and label (N, 2, H, W) in (y, x) px, mask
        (N, 1, H, W) in [0, 1], epe (N,) the masked mean end-point error of each sample.

        Labels are (H, W, 2) x-y flows; masks (H, W, 1) uint8 with 255 = valid, or None
        (every pixel counts).
        """
        check_pairs(img1s, img2s)
        if masks is None:
            masks = [None] * len(labels)
        masks = [full_mask(label.shape[:2]) if mask is None else mask
                 for label, mask in zip(labels, masks)]
        for device_chunks in self._batches([img1s, img2s, labels, masks], batch_size):
            for img1, img2, label, mask in device_chunks:
                label, mask = flow_yx(label), mask_weights(mask)
                flow, _, _, epe = self.do_batch(*unit_images(img1, img2), label, mask, resize)
                yield flow, label, mask, epe

