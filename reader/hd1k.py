"""HD1K: list the image pairs with ground truth.

Layout: ``hd1k_input/image_2/%06d_%04d.png`` (sequence, frame) and
``hd1k_flow_gt/flow_occ/%06d_%04d.png`` (16-bit KITTI-format flow PNG). Flow file (s, f) with
a successor (s, f + 1) among the flow files gives the pair (frame f, frame f + 1), so the last
flow file of each sequence is not used, as in the original. Images are BGR (cv2.imread); the
mask is the flow PNG's valid bit (0/255), invalid pixels get zero flow.

The original's validation pair is the one ending at position 5 of the sorted flow listing
(``VALIDATE_POSITIONS``); 'train' leaves it out, 'valid' keeps only it, 'mixed' keeps all.

Load options, with the original's defaults (see ``reader.sample``): ``trim=(50, 100)`` drops
50 rows at the top and bottom and 100 columns at each side (flow values unchanged);
``normalize=True`` stretches each pair's intensities jointly to 0..255; ``resize_hw``
(436 x 1024 when mixed into Sintel fine-tuning) resizes the sparse flow with its valid map
(``sample.sparse_resize``): flow rescaled, mask = resized valid fraction x 255.
"""
import re
from pathlib import Path

from common.errors import UserError
from reader.sample import BGR, FLOW_VALID, Sample

VALIDATE_POSITIONS = (5,)
PARTS = ('train', 'valid', 'mixed')
DEFAULT_TRIM = (50, 100)
_NAME = re.compile(r'(\d{6})_(\d{4})\.png')


def list_samples(root, part='mixed', trim=DEFAULT_TRIM, normalize=True, resize_hw=None):
    """Samples under the HD1K folder ``root`` in sorted (sequence, frame) order."""
    if part not in PARTS:
        raise UserError(f"unknown HD1K part '{part}' (expected {', '.join(PARTS)})")
    root = Path(root)
    images = root / 'hd1k_input' / 'image_2'
    flows = root / 'hd1k_flow_gt' / 'flow_occ'
    for folder in (images, flows):
        if not folder.is_dir():
            raise UserError(f'{folder}: HD1K folder not found')
    files = sorted((int(m.group(1)), int(m.group(2)))
                   for m in map(_NAME.fullmatch, (p.name for p in flows.iterdir())) if m)
    samples = []
    for position in range(1, len(files)):
        (sequence, frame), successor = files[position - 1], files[position]
        if successor != (sequence, frame + 1):
            continue
        validation = position in VALIDATE_POSITIONS
        if (part == 'train' and validation) or (part == 'valid' and not validation):
            continue
        img1 = images / f'{sequence:06d}_{frame:04d}.png'
        img2 = images / f'{sequence:06d}_{frame + 1:04d}.png'
        for path in (img1, img2):
            if not path.is_file():
                raise UserError(f'{path}: file not found (frame of HD1K pair '
                                f'{sequence:06d}_{frame:04d})')
        samples.append(Sample(
            name=f'hd1k/{sequence:06d}_{frame:04d}', img1=img1, img2=img2,
            flow=flows / f'{sequence:06d}_{frame:04d}.png', mask_kind=FLOW_VALID,
            channel_order=BGR, group='hd1k',
            trim_margins=None if trim is None else tuple(trim), normalize=normalize,
            resize_hw=None if resize_hw is None else tuple(resize_hw)))
    return samples
