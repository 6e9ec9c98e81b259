"""MPI-Sintel: list the training set, MaskFlownet's train/validation split of it, and the test set.

Layout under ``MPI-Sintel-complete``: ``<part>/<pass>/<sequence>/frame_%04d.png`` with
``training/flow/<sequence>/frame_%04d.flo`` and ``training/invalid/<sequence>/frame_%04d.png``
for the pair (frame i, frame i + 1). Images are RGB (the original used skimage.io.imread).
The mask is ``255 - invalid``, as in the original: valid = not marked in the ``invalid`` PNG.
The occlusion maps (``training/occlusions/``, where present) are used by the metrics only.

Splits: 'training' (all), 'training1' (MaskFlownet's train part), 'training2' (its validation
part: sequences ambush_2, ambush_6, bamboo_2, cave_4, market_6 and temple_2) and 'test'.
The split file has one line per training pair of one pass, 1 = training1 and 2 = training2,
in sorted (sequence, frame) order: the order the original saw on Windows, where os.listdir
is sorted. It was written for the full training set (``OFFICIAL_PAIRS`` below), so each
line belongs to a known (sequence, frame): a partial tree (the bundled sample data, a
subset) is split by those names. A split file of any other length is applied by position
and must then have exactly one line per listed pair.
"""
import os
import re
from pathlib import Path

from common.errors import UserError
from reader.sample import INVALID_PNG, OCC_PNG, RGB, Sample, group_samples

DEFAULT_SPLIT_FILE = Path(__file__).resolve().parent.parent / 'config' / 'Sintel_train_val_maskflownet.txt'
SPLITS = ('training', 'training1', 'training2', 'test')
PASSES = ('clean', 'final')
# Pairs per sequence of the official training set (frames - 1), in sorted order: 1041 in all.
OFFICIAL_PAIRS = {
    'alley_1': 49, 'alley_2': 49, 'ambush_2': 20, 'ambush_4': 32, 'ambush_5': 49,
    'ambush_6': 19, 'ambush_7': 49, 'bamboo_1': 49, 'bamboo_2': 49, 'bandage_1': 49,
    'bandage_2': 49, 'cave_2': 49, 'cave_4': 49, 'market_2': 49, 'market_5': 49,
    'market_6': 39, 'mountain_1': 49, 'shaman_2': 49, 'shaman_3': 49, 'sleeping_1': 49,
    'sleeping_2': 49, 'temple_2': 49, 'temple_3': 49,
}
_FRAME = re.compile(r'frame_(\d+)\.png')


def read_split_file(path):
    """The labels (1 = training1, 2 = training2), one per training pair, in file order."""
    try:
        lines = Path(path).read_text().split()
    except FileNotFoundError:
        raise UserError(f'{path}: Sintel split file not found') from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f'{path}: cannot read Sintel split file ({e})') from e
    for number, token in enumerate(lines, 1):
        if token not in ('1', '2'):
            raise UserError(f'{path}: entry {number} is {token!r}, expected 1 or 2')
    return [int(token) for token in lines]


def _pairs(folder):
    """Sorted (sequence, frame number) of every frame whose successor exists, and the frames."""
    try:
        sequences = sorted(entry for entry in os.listdir(folder) if (folder / entry).is_dir())
    except OSError:
        raise UserError(f'{folder}: Sintel folder not found') from None
    pairs = []
    for sequence in sequences:
        numbers = {int(m.group(1)) for m in map(_FRAME.fullmatch, os.listdir(folder / sequence)) if m}
        pairs.extend((sequence, n) for n in sorted(numbers) if n + 1 in numbers)
    return pairs


def _labels(pairs, split_file, pass_folder):
    """The split label of each listed pair (see the module docstring)."""
    labels = read_split_file(split_file)
    if len(labels) != sum(OFFICIAL_PAIRS.values()):
        if len(labels) != len(pairs):
            raise UserError(f'{split_file}: has {len(labels)} entries but {pass_folder} has '
                            f'{len(pairs)} training pairs')
        return labels
    offsets, start = {}, 0
    for sequence, count in OFFICIAL_PAIRS.items():
        offsets[sequence] = start
        start += count
    result = []
    for sequence, frame in pairs:
        if sequence not in OFFICIAL_PAIRS or not 1 <= frame <= OFFICIAL_PAIRS[sequence]:
            raise UserError(f'{pass_folder / sequence}/frame_{frame:04d}.png: not a pair of the '
                            f'official Sintel training set that {split_file} splits')
        result.append(labels[offsets[sequence] + frame - 1])
    return result


def list_samples(root, split='training', passes=PASSES, split_file=None):
    """Samples of ``split`` under the MPI-Sintel-complete folder ``root``, pass by pass.

    Within a pass, samples are in sorted (sequence, frame) order; ``Sample.group`` is the pass.
    """
    if split not in SPLITS:
        raise UserError(f"unknown Sintel split '{split}' (expected {', '.join(SPLITS)})")
    for pass_name in passes:
        if pass_name not in PASSES:
            raise UserError(f"unknown Sintel pass '{pass_name}' (expected clean or final)")
    root = Path(root)
    part = 'test' if split == 'test' else 'training'
    samples = []
    for pass_name in passes:
        folder = root / part / pass_name
        pairs = _pairs(folder)
        if split in ('training1', 'training2'):
            wanted = int(split[-1])
            labels = _labels(pairs, split_file or DEFAULT_SPLIT_FILE, folder)
            pairs = [pair for pair, label in zip(pairs, labels) if label == wanted]
        for sequence, frame in pairs:
            name = f'frame_{frame:04d}'
            flow = mask = occ = None
            if part == 'training':
                flow = root / part / 'flow' / sequence / f'{name}.flo'
                mask = root / part / 'invalid' / sequence / f'{name}.png'
                for path in (flow, mask):
                    if not path.is_file():
                        raise UserError(f'{path}: file not found (ground truth of '
                                        f'{folder / sequence / name}.png)')
                # for the occluded / not occluded metrics, where the folder is there
                occ = root / part / 'occlusions' / sequence / f'{name}.png'
                occ = occ if occ.is_file() else None
            samples.append(Sample(
                name=f'sintel/{pass_name}/{sequence}/{name}',
                img1=folder / sequence / f'{name}.png',
                img2=folder / sequence / f'frame_{frame + 1:04d}.png',
                flow=flow, mask=mask, mask_kind=None if mask is None else INVALID_PNG,
                channel_order=RGB, group=pass_name,
                occ=occ, occ_kind=None if occ is None else OCC_PNG))
    return samples


def by_pass(samples):
    """``{'clean': [...], 'final': [...]}``: validation reports each pass separately."""
    return group_samples(samples)
