"""The training crop: the original's random crop of each training sample to the dataset
config's ``orig_shape`` and its random left-right mirror, in numpy, in the loader's worker
threads (``reader.loader.BatchStream``'s transform). The rest of the augmentation runs on the
device (``network.augmentation``).
"""
import numpy as np

from common.errors import UserError


def random_crop_and_flip(example, crop_shape, rng, name='sample'):
    """The original's training-time crop to ``crop_shape`` and random left-right mirror.

    Returns CHW arrays. The mirror flips the width axis and negates u (the original called it
    a vertical flip).
    """
    arrays = [a for a in example if a is not None]
    height, width = arrays[0].shape[:2]
    crop_h, crop_w = crop_shape
    if height < crop_h or width < crop_w:
        raise UserError('%s is %dx%d, smaller than the training crop %dx%d (orig_shape)'
                        % (name, width, height, crop_w, crop_h))
    top = rng.integers(height - crop_h) if height > crop_h else 0
    left = rng.integers(width - crop_w) if width > crop_w else 0
    arrays = [np.ascontiguousarray(a[top:top + crop_h, left:left + crop_w].transpose(2, 0, 1))
              for a in arrays]
    if rng.integers(2):
        arrays = [a[:, :, ::-1] for a in arrays]
        flow = arrays[2]
        arrays[2] = np.stack([-flow[0], flow[1]])
    return [np.ascontiguousarray(a) for a in arrays]
