"""Validation over dataset samples, streamed: a few samples are in memory at a time."""
import numpy as np
from tqdm import tqdm

from reader.sample import load_sample


def _same_shape_runs(examples):
    """Split a list of examples into consecutive runs of equal image size (batchable)."""
    runs = []
    for example in examples:
        if runs and runs[-1][0].img1.shape == example.img1.shape:
            runs[-1].append(example)
        else:
            runs.append([example])
    return runs


def evaluate_samples(pipe, samples, batch_size=1, resize=None, return_type='epe',
                     description=None, progress=True):
    """Mean per-sample EPE (or KITTI Fl) of ``pipe`` on ``samples``; NaN for no samples."""
    values = []
    chunk = max(1, batch_size * len(pipe.ctx))
    with tqdm(total=len(samples), desc=description, disable=not progress, leave=False) as bar:
        for start in range(0, len(samples), chunk):
            examples = [load_sample(s) for s in samples[start:start + chunk]]
            for run in _same_shape_runs(examples):
                values.append(pipe.per_sample_metric(
                    [e.img1 for e in run], [e.img2 for e in run], [e.flow for e in run],
                    [e.mask for e in run], batch_size=batch_size, resize=resize,
                    return_type=return_type))
            bar.update(len(examples))
    return float(np.mean(np.concatenate(values))) if values else float('nan')
