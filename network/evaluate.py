"""Validation over dataset samples, streamed: a few samples are in memory at a time."""
import numpy as np
from tqdm import tqdm

from reader import roots
from reader.sample import load_sample


def same_shape_runs(examples):
    """Split a list of examples into consecutive runs of equal image size (batchable)."""
    runs = []
    for example in examples:
        if runs and runs[-1][0].img1.shape == example.img1.shape:
            runs[-1].append(example)
        else:
            runs.append([example])
    return runs


def evaluate_samples(pipe, samples, batch_size=1, resize=None, metrics=('epe',),
                     description=None, progress=True):
    """``{metric: mean over samples}`` of ``pipe`` on ``samples`` (NaN for no samples).

    Metrics: 'epe' (masked average end-point error) and 'kitti' (Fl outlier share).
    """
    values = {metric: [] for metric in metrics}
    chunk = max(1, batch_size * len(pipe.ctx))
    with tqdm(total=len(samples), desc=description, disable=not progress, leave=False) as bar:
        for start in range(0, len(samples), chunk):
            examples = [load_sample(s) for s in samples[start:start + chunk]]
            for run in same_shape_runs(examples):
                result = pipe.per_sample_metrics(
                    [e.img1 for e in run], [e.img2 for e in run], [e.flow for e in run],
                    [e.mask for e in run], batch_size=batch_size, resize=resize, metrics=metrics)
                for metric in metrics:
                    values[metric].append(result[metric])
            bar.update(len(examples))
    return {metric: float(np.mean(np.concatenate(v))) if v else float('nan')
            for metric, v in values.items()}


SINTEL_DIVISIONS = ('training2', 'training')   # held-out split first, as the original logged
KITTI_NETWORK_SIZE = (512, 1152)   # the original's KITTI inference size (H, W)


def _skip(report, name, key):
    report.append((name, None, 'not configured (set %s or `%s:` in the dataset roots file), skipped'
                   % (roots.env_var(key), key)))


def validate_checkpoint(pipe, log, steps, batch_size=1, resize=None, progress=True):
    """``--valid``: Sintel, KITTI 2012/2015 and FlyingChairs metrics of the loaded checkpoint.

    Each result is logged as the original did (``steps=N, sintel.training2.clean:epe=...``)
    and returned as ``[(name, value or None, note)]``; unconfigured datasets are skipped.
    """
    from reader import chairs, kitti, sintel
    report = []

    def record(name, value):
        log.log('steps=%d, %s=%s' % (steps, name, value))
        report.append((name, value, ''))

    if roots.configured('sintel'):
        root = roots.dataset_root('sintel')
        for division in SINTEL_DIVISIONS:
            for pass_name, samples in sintel.by_pass(sintel.list_samples(root, division)).items():
                name = 'sintel.%s.%s' % (division, pass_name)
                result = evaluate_samples(pipe, samples, batch_size, resize, description=name,
                                          progress=progress)
                record(name + ':epe', result['epe'])
    else:
        _skip(report, 'sintel', 'sintel')
    for edition in ('2012', '2015'):
        key = 'kitti' + edition
        if not roots.configured(key):
            _skip(report, 'kitti.' + edition, key)
            continue
        samples = kitti.list_samples(roots.dataset_root(key), edition, 'mixed')
        result = evaluate_samples(pipe, samples, batch_size, resize or KITTI_NETWORK_SIZE,
                                  ('epe', 'kitti'), description='kitti.' + edition,
                                  progress=progress)
        for metric in ('epe', 'kitti'):
            record('kitti.%s:%s' % (edition, metric), result[metric])
    if roots.configured('chairs'):
        samples = chairs.list_samples(roots.dataset_root('chairs'), 'val')
        result = evaluate_samples(pipe, samples, batch_size, resize, description='chairs',
                                  progress=progress)
        record('chairs:epe', result['epe'])
    else:
        _skip(report, 'chairs', 'chairs')
    return report


def format_report(report):
    width = max(len(name) for name, _, _ in report) if report else 0
    lines = []
    for name, value, note in report:
        lines.append('%-*s  %s' % (width, name, note if value is None else '%.4f' % value))
    return '\n'.join(lines)
