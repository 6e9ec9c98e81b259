"""FlyingThings3D_subset: list image pairs with forward and backward flow.

Layout: ``<part>/image_<pass>/<camera>/%07d.png`` and
``<part>/flow/<camera>/<direction>/%07d.flo``. A flow file numbered i maps frame i to frame
i + 1 (``into_future``) or to frame i - 1 (``into_past``); files whose partner frame is
missing (sequence ends) are skipped. Images are BGR (the original used cv2.imread); flow is
read as .flo; there is no mask (the subset's occlusion maps were not used).

The original trained on the subset's ``train`` part only (its Things3D log reports
``train=78518``), both cameras and both directions; those are the defaults, and ``val`` is
listed only when asked for (``parts: [train, val]`` in a dataset config). Its ``sub_type``
selected the pass; 'mixed' lists the clean and the final pass. It meant to cut the list to
1024 samples, but that code had no effect; ``shard=(index, count)`` keeps every count-th
sample instead, when a part is wanted.
"""
import os
import re
from pathlib import Path

from common.errors import UserError
from reader.sample import BGR, Sample, select_shard

PARTS = ('train', 'val')
CAMERAS = ('left', 'right')
DIRECTIONS = ('into_future', 'into_past')
SUB_TYPES = {'clean': ('clean',), 'final': ('final',), 'mixed': ('clean', 'final')}
_FRAME = re.compile(r'(\d{7})\.(png|flo)$')


def _numbered(folder, ext):
    try:
        names = os.listdir(folder)
    except OSError:
        raise UserError(f'{folder}: FlyingThings3D folder not found') from None
    found = {}
    for name in names:
        match = _FRAME.fullmatch(name)
        if match and match.group(2) == ext:
            found[int(match.group(1))] = Path(folder) / name
    return found


def _check(value, allowed, what):
    for item in value:
        if item not in allowed:
            raise UserError(f"unknown FlyingThings3D {what} '{item}' (expected one of "
                            f"{', '.join(allowed)})")


def list_samples(root, sub_type='clean', parts=('train',), cameras=CAMERAS, directions=DIRECTIONS,
                 shard=None):
    """Samples under the FlyingThings3D_subset folder ``root`` in sorted order."""
    if sub_type not in SUB_TYPES:
        raise UserError(f"unknown FlyingThings3D sub_type '{sub_type}' (expected clean, final "
                        f"or mixed)")
    _check(parts, PARTS, 'part')
    _check(cameras, CAMERAS, 'camera')
    _check(directions, DIRECTIONS, 'direction')
    root = Path(root)
    samples = []
    for part in parts:
        for pass_name in SUB_TYPES[sub_type]:
            for camera in cameras:
                frames = _numbered(root / part / f'image_{pass_name}' / camera, 'png')
                for direction in directions:
                    step = 1 if direction == 'into_future' else -1
                    flows = _numbered(root / part / 'flow' / camera / direction, 'flo')
                    for index in sorted(flows):
                        if index not in frames or index + step not in frames:
                            continue
                        samples.append(Sample(
                            name=f'things3d/{part}/{pass_name}/{camera}/{direction}/{index:07d}',
                            img1=frames[index], img2=frames[index + step], flow=flows[index],
                            channel_order=BGR, group=pass_name))
    return select_shard(samples, shard)
