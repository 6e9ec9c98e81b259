"""FlyingChairs: list the official train/val split of ``FlyingChairs_release``.

Layout: ``data/%05d_img1.ppm``, ``data/%05d_img2.ppm``, ``data/%05d_flow.flo`` (1-based) and
``FlyingChairs_train_val.txt``, whose line i says whether sample i is in the training (1) or
validation (2) split. Images are RGB (the original read the raw PPM bytes); there is no mask.
"""
import os
from pathlib import Path

from common.errors import UserError
from reader.sample import RGB, Sample

SPLIT_FILE = 'FlyingChairs_train_val.txt'
SPLITS = {'train': 1, 'val': 2}


def read_split_file(path):
    """The split labels (1 or 2) of samples 1, 2, ... in ``path``."""
    try:
        lines = Path(path).read_text().split('\n')
    except FileNotFoundError:
        raise UserError(f'{path}: FlyingChairs split file not found') from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f'{path}: cannot read FlyingChairs split file ({e})') from e
    while lines and not lines[-1].strip():
        lines.pop()
    labels = []
    for number, line in enumerate(lines, 1):
        if line.strip() not in ('1', '2'):
            raise UserError(f'{path}: line {number} is {line.strip()!r}, expected 1 (train) '
                            f'or 2 (val)')
        labels.append(int(line))
    return labels


def list_samples(root, split='train'):
    """Samples of ``split`` ('train' or 'val') under the FlyingChairs_release folder ``root``."""
    if split not in SPLITS:
        raise UserError(f"unknown FlyingChairs split '{split}' (expected train or val)")
    root = Path(root)
    labels = read_split_file(root / SPLIT_FILE)
    data = root / 'data'
    try:
        present = set(os.listdir(data))  # one listing instead of ~70k stat calls
    except OSError:
        raise UserError(f'{data}: FlyingChairs data folder not found') from None
    samples = []
    for index, label in enumerate(labels, 1):
        if label != SPLITS[split]:
            continue
        names = [f'{index:05d}_img1.ppm', f'{index:05d}_img2.ppm', f'{index:05d}_flow.flo']
        for name in names:
            if name not in present:
                raise UserError(f'{data / name}: file not found (listed in {root / SPLIT_FILE})')
        samples.append(Sample(name=f'chairs/{index:05d}', img1=data / names[0],
                              img2=data / names[1], flow=data / names[2],
                              channel_order=RGB, group='chairs'))
    return samples
