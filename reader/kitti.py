"""KITTI 2012 and 2015 optical flow: list the training pairs (train/valid parts) and test pairs.

Layout under the edition's root (``data_stereo_flow`` for 2012, ``data_scene_flow`` for 2015):
``<training|testing>/<colored_0 (2012) | image_2 (2015)>/%06d_10.png`` and ``%06d_11.png``,
with ground truth ``training/flow_occ/%06d_10.png`` (and ``training/flow_noc/``, where present,
for the metrics on occluded and non-occluded pixels). Images are BGR (the original used
cv2.imread). The mask is the valid bit of the 16-bit flow PNG (0/255); invalid pixels get
zero flow.

Parts: 'train' leaves out ``VALIDATE_INDICES`` (the original's validation pairs), 'valid'
keeps only them, 'mixed' keeps all; 'testing' lists the test pairs, without flow.

Load options (stored in each ``Sample``; see ``reader.sample``), as the original used them:

* ``crop=(370, 1224)``: keep the bottom 370 rows and left 1224 columns (the smallest KITTI
  frame), flow values unchanged; used to validate at full resolution on mixed-size frames.
* ``resize_hw=(370, 1224)``: resize everything to that shape; training on KITTI resized to
  ``orig_shape`` (default 370 x 1224), Sintel fine-tuning mixed KITTI 2015 in at 436 x 1024.
  The sparse flow is resized with its valid map and renormalised (``sample.sparse_resize``),
  so the mask becomes the resized valid fraction x 255 and flow values are rescaled.
"""
import re
from pathlib import Path

from common.errors import UserError
from reader.sample import BGR, FLOW_VALID, NOC_FLOW, Sample

VALIDATE_INDICES = {
    '2012': (0, 12, 15, 16, 17, 18, 24, 30, 38, 39, 42, 50, 54, 59, 60, 61, 77, 78, 81, 89, 97,
             101, 107, 121, 124, 142, 145, 146, 152, 154, 155, 158, 159, 160, 164, 182, 183,
             184, 190),
    '2015': (10, 11, 12, 25, 26, 30, 31, 40, 41, 42, 46, 52, 53, 72, 73, 74, 75, 76, 80, 81, 85,
             86, 95, 96, 97, 98, 104, 116, 117, 120, 121, 126, 127, 153, 172, 175, 183, 184, 190,
             199),
}
IMAGE_FOLDERS = {'2012': 'colored_0', '2015': 'image_2'}
PARTS = ('train', 'valid', 'mixed', 'testing')
_FIRST = re.compile(r'(\d{6})_10\.png')


def _indices(folder):
    if not folder.is_dir():
        raise UserError(f'{folder}: KITTI folder not found')
    return sorted(int(m.group(1)) for m in map(_FIRST.fullmatch, (p.name for p in folder.iterdir()))
                  if m)


def list_samples(root, edition, part='mixed', crop=None, resize_hw=None):
    """Samples of KITTI ``edition`` ('2012' or '2015') under its root, sorted by index."""
    if edition not in IMAGE_FOLDERS:
        raise UserError(f"unknown KITTI edition '{edition}' (expected 2012 or 2015)")
    if part not in PARTS:
        raise UserError(f"unknown KITTI part '{part}' (expected {', '.join(PARTS)})")
    root = Path(root)
    split = 'testing' if part == 'testing' else 'training'
    images = root / split / IMAGE_FOLDERS[edition]
    flows = None if part == 'testing' else root / split / 'flow_occ'
    validation = set(VALIDATE_INDICES[edition])
    samples = []
    for index in _indices(images if flows is None else flows):
        if (part == 'train' and index in validation) or (part == 'valid' and index not in validation):
            continue
        img1, img2 = images / f'{index:06d}_10.png', images / f'{index:06d}_11.png'
        for path in (img1, img2):
            if not path.is_file():
                raise UserError(f'{path}: file not found (frame of KITTI {edition} pair {index:06d})')
        # flow_noc, where present, tells occluded pixels apart (for the metrics only)
        noc = None if flows is None else root / split / 'flow_noc' / f'{index:06d}_10.png'
        noc = noc if noc is not None and noc.is_file() else None
        samples.append(Sample(
            name=f'kitti{edition}/{split}/{index:06d}', img1=img1, img2=img2,
            flow=None if flows is None else flows / f'{index:06d}_10.png',
            mask_kind=None if flows is None else FLOW_VALID, channel_order=BGR, group=edition,
            crop_bottom_left=None if crop is None else tuple(crop),
            resize_hw=None if resize_hw is None else tuple(resize_hw),
            occ=noc, occ_kind=None if noc is None else NOC_FLOW))
    return samples
