"""Validation over dataset samples, streamed: a few samples are in memory at a time."""
import numpy as np
from tqdm import tqdm

from reader import roots
from reader.sample import load_sample

from .losses import pooled_fl


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
    """``{metric: value}`` of ``pipe`` on ``samples`` (NaN for no samples).

    Metrics: 'epe' (masked average end-point error) and 'kitti' (the KITTI outlier share of a
    sample's valid pixels) are means over samples, as the original reported them; 'fl_all'
    is the outlier share of the valid pixels of all samples together, the KITTI benchmark's
    Fl-all.
    """
    per_sample = [m for m in metrics if m != 'fl_all']
    if 'fl_all' in metrics:
        per_sample += ['fl_outliers', 'fl_pixels']
    values = {metric: [] for metric in per_sample}
    chunk = max(1, batch_size * len(pipe.ctx))
    with tqdm(total=len(samples), desc=description, disable=not progress, leave=False) as bar:
        for start in range(0, len(samples), chunk):
            examples = [load_sample(s) for s in samples[start:start + chunk]]
            for run in same_shape_runs(examples):
                result = pipe.per_sample_metrics(
                    [e.img1 for e in run], [e.img2 for e in run], [e.flow for e in run],
                    [e.mask for e in run], batch_size=batch_size, resize=resize,
                    metrics=per_sample)
                for metric in per_sample:
                    values[metric].append(result[metric])
            bar.update(len(examples))
    values = {metric: np.concatenate(v) if v else np.zeros(0) for metric, v in values.items()}
    means = {metric: float(np.mean(v)) if len(v) else float('nan') for metric, v in values.items()}
    if 'fl_all' in metrics:
        means['fl_all'] = pooled_fl(values['fl_outliers'], values['fl_pixels'])
    return {metric: means[metric] for metric in metrics}


SINTEL_DIVISIONS = ('training2', 'training')   # held-out split first, as the original logged
KITTI_NETWORK_SIZE = (512, 1152)   # the original's KITTI inference size (H, W)
# 'kitti' is the original's log key (per-image mean Fl); 'fl_all' pools all pixels (benchmark).
KITTI_METRICS = ('epe', 'kitti', 'fl_all')


def _skip(report, name, key):
    report.append((name, None, 'not configured (set %s or `%s:` in the dataset roots file), skipped'
                   % (roots.env_var(key), key)))


def validate_checkpoint(pipe, log, steps, batch_size=1, resize=None, progress=True):
    """``--valid``: Sintel, KITTI 2012/2015 and FlyingChairs metrics of the loaded checkpoint.

    Each result is logged as the original did (``steps=N, sintel.training2.clean:epe=...``);
    KITTI adds ``kitti.2015:fl_all`` (the benchmark's Fl-all, pooled over all valid pixels)
    to the original's ``kitti.2015:kitti`` (the per-image mean of Fl). Returns
    ``[(name, value or None, note)]``; unconfigured datasets are skipped.
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
                                  KITTI_METRICS, description='kitti.' + edition,
                                  progress=progress)
        for metric in KITTI_METRICS:
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
