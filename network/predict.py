"""Prediction for new data: load a network for a config and checkpoint, run it on an image pair.

``predict_new_data.py`` is a thin command line over these functions.
"""
import numpy as np

from reader import flowio

from .checkpoint import find_checkpoint
from .config import load_config
from .errors import UserError
from .pipeline import Pipeline

def load_pipeline(config_name, checkpoint_spec, ctx=None):
    """Pipeline for ``config_name`` with the checkpoint ``-c`` names loaded; returns (pipe, path)."""
    config = load_config(config_name)
    path, _, _ = find_checkpoint(checkpoint_spec)
    pipe = Pipeline(config, ctx)
    pipe.load(path)
    return pipe, path


def read_pair(path1, path2):
    """Two images as the original's predict_new_data.py fed them: OpenCV BGR uint8."""
    # Quirk Q7, kept for compatibility with the published checkpoints' behaviour on new data:
    # training readers give RGB, but new data is fed in OpenCV's BGR order.
    img1, img2 = flowio.read_image(path1), flowio.read_image(path2)
    if img1.shape != img2.shape:
        raise UserError('%s is %dx%d but %s is %dx%d: the two images must have the same size'
                        % (path1, img1.shape[1], img1.shape[0], path2, img2.shape[1], img2.shape[0]))
    return img1, img2


def occ_mask_image(occ_mask):
    """(H, W, 1) mask in [0, 1] -> (H, W) uint8 grayscale, white = visible in both images."""
    return np.round(np.clip(occ_mask[..., 0], 0, 1) * 255).astype(np.uint8)


def predict_image_pair(pipe, image_1, image_2, out_path, occ_mask_path=None, resize=None):
    """Write the flow from image_1 to image_2 to ``out_path`` (kind by extension); return it."""
    flowio.check_flow_output_path(out_path)
    if occ_mask_path:
        flowio.check_image_output_path(occ_mask_path)
    img1, img2 = read_pair(image_1, image_2)
    flow, occ_mask, _ = pipe.predict_pair(img1, img2, resize=resize)
    flowio.write_flow(out_path, flow)
    if occ_mask_path:
        flowio.write_image(occ_mask_path, occ_mask_image(occ_mask))
    return flow, occ_mask
