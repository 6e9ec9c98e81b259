"""Evaluation on the benchmarks: ``--valid`` and validation during training.

``BENCHMARKS`` says, per benchmark, where its data is, which splits are validated and which
is the test split, the network input size of each, the metrics, and how a submission is
written (``engine.submission`` writes them). Every use streams its samples through one loop
(``stream_runs``): a few samples are in memory at a time. The validation sets of training
runs are listed per dataset config in ``reader.mixes.MIXES``; their keys are the original's
log keys (``chairs``, ``sintel.clean``, ``kitti.2015``), which differ from ``--valid``'s
(``sintel.training2.clean:epe``) as the original's did.

Besides the original's metrics (``epe`` and ``kitti``, means over images), every set gets the
pixel-pooled metrics of ``engine.metrics`` (``epe_all``, ``above3px``, ``epe_s40+``, ...), in
``--valid`` and in validation during training alike. With a
custom dataset config, ``--valid`` validates on its ``validation_list`` instead of the
benchmarks (``validate_list``).
"""
import os
from typing import Callable, NamedTuple, Optional

import numpy as np
from mxnet import nd
from tqdm import tqdm

from network.conventions import occ_mask_image
from network.losses import kitti_outliers, pooled_fl
from reader import chairs, flowio, kitti, roots, sintel
from reader.sample import check_sets, group_samples, load_occlusion, load_sample
from tracking.logformat import format_pairs

from .metrics import PIXEL_METRICS, PooledMetrics

SINTEL_NETWORK_SIZE = (448, 1024)   # the original's Sintel inference size for --predict (H, W)
KITTI_NETWORK_SIZE = (512, 1152)    # the original's KITTI inference size (H, W)
# 'kitti' is the original's log key (per-image mean Fl); 'fl_all' pools all pixels (benchmark).
KITTI_METRICS = ('epe', 'kitti', 'fl_all')
# The original's EPE (a mean over images) first, then the pixel-pooled ones (engine.metrics).
EPE_METRICS = ('epe',) + PIXEL_METRICS


class Submission(NamedTuple):
    """How a benchmark's test flows are laid out: ``{prefix}{suffix}/{path(sample)}``."""
    suffix: str               # of the output folder, which holds the settings record
    path: Callable            # sample -> flow file inside the folder
    write_flow: Callable      # (path, flow) -> None


SINTEL_SUBMISSION = Submission(
    '_sintel', lambda s: os.path.join(s.group, s.img1.parent.name, s.img1.stem + '.flo'),
    flowio.write_flo)   # {pass}/{sequence}/frame_XXXX.flo
KITTI_SUBMISSION = Submission(
    '_kitti', lambda s: os.path.join(s.group, s.img1.name),
    flowio.write_kitti_flow_png)   # {2012|2015}/XXXXXX_10.png, 16-bit


class Benchmark(NamedTuple):
    """One row of ``BENCHMARKS``."""
    name: str                       # report and log name
    root_key: str                   # key in the dataset roots
    lister: Callable                # (root, split) -> [Sample]
    valid_splits: tuple             # what --valid evaluates, in log order
    metrics: tuple                  # what --valid reports (see evaluate_samples)
    valid_size: Optional[tuple]     # network input (H, W); None: each side up to a multiple of 64
    test_split: Optional[str] = None
    predict_size: Optional[tuple] = None
    submission: Optional[Submission] = None
    per_pass: bool = False          # one result per pass, named NAME.SPLIT.PASS


def _kitti_lister(edition):
    return lambda root, split: kitti.list_samples(root, edition, split)


BENCHMARKS = (
    # The held-out Sintel split first, as the original logged.
    Benchmark('sintel', 'sintel', sintel.list_samples, valid_splits=('training2', 'training'),
              metrics=EPE_METRICS, valid_size=None, test_split='test',
              predict_size=SINTEL_NETWORK_SIZE, submission=SINTEL_SUBMISSION, per_pass=True),
    Benchmark('kitti.2012', 'kitti2012', _kitti_lister('2012'), valid_splits=('mixed',),
              metrics=KITTI_METRICS + PIXEL_METRICS, valid_size=KITTI_NETWORK_SIZE, test_split='testing',
              predict_size=KITTI_NETWORK_SIZE, submission=KITTI_SUBMISSION),
    Benchmark('kitti.2015', 'kitti2015', _kitti_lister('2015'), valid_splits=('mixed',),
              metrics=KITTI_METRICS + PIXEL_METRICS, valid_size=KITTI_NETWORK_SIZE, test_split='testing',
              predict_size=KITTI_NETWORK_SIZE, submission=KITTI_SUBMISSION),
    Benchmark('chairs', 'chairs', chairs.list_samples, valid_splits=('val',),
              metrics=EPE_METRICS, valid_size=None),   # no test split: nothing to submit
)


# --- the shared loop and the metrics ------------------------------------------------------

def same_shape_runs(examples):
    """Split a list of examples into consecutive runs of equal image size (batchable)."""
    runs = []
    for example in examples:
        if runs and runs[-1][0].img1.shape == example.img1.shape:
            runs[-1].append(example)
        else:
            runs.append([example])
    return runs


def stream_runs(pipe, samples, batch_size, on_run, description=None, progress=True):
    """Load ``samples`` one chunk (``batch_size`` per device) at a time and call
    ``on_run(samples, examples)`` on each run of consecutive samples of one image size.

    Batches need one frame size; KITTI frames differ, Sintel's and Chairs' do not.
    """
    chunk = max(1, batch_size * len(pipe.ctx))
    # disable=None: a bar only on a terminal (a log file would get bar fragments before lines)
    with tqdm(total=len(samples), desc=description, disable=None if progress else True,
              leave=False) as bar:
        for start in range(0, len(samples), chunk):
            part = samples[start:start + chunk]
            done = 0
            for run in same_shape_runs([load_sample(s) for s in part]):
                on_run(part[done:done + len(run)], run)
                done += len(run)
            bar.update(len(part))


def per_sample_metrics(pipe, img1s, img2s, labels, masks=None, batch_size=1, resize=None,
                       metrics=('epe',), pooled=None, occlusions=None):
    """``{metric: per-sample float array}`` for metrics 'epe', 'kitti' (Fl, the outlier share
    of the sample's valid pixels), 'fl_outliers' and 'fl_pixels' (the counts behind Fl).

    ``pooled``: an ``engine.metrics.PooledMetrics`` that gets every sample's pixels too, with
    its occlusion map from ``occlusions`` (a list of H x W bool maps or None, one per sample).
    """
    fl_metrics = {'kitti', 'fl_outliers', 'fl_pixels'}
    unknown = set(metrics) - {'epe'} - fl_metrics
    if unknown:
        raise ValueError('unknown metrics %s' % sorted(unknown))
    values = {metric: [] for metric in metrics}
    done = 0
    for flow, label, mask, epe in pipe.labelled_batches(img1s, img2s, labels, masks,
                                                        batch_size, resize):
        if 'epe' in values:
            values['epe'].append(epe.asnumpy())
        if fl_metrics & values.keys():
            outliers, pixels = (c.asnumpy() for c in kitti_outliers(nd, flow, label, mask))
            for metric, value in (('kitti', outliers / pixels), ('fl_outliers', outliers),
                                  ('fl_pixels', pixels)):
                if metric in values:
                    values[metric].append(value)
        if pooled is not None:
            flow, label, mask = (a.asnumpy() for a in (flow, label, mask))
            for k in range(len(flow)):
                occluded = None if occlusions is None else occlusions[done + k]
                pooled.add(flow[k].transpose(1, 2, 0), label[k].transpose(1, 2, 0), mask[k, 0],
                           occluded)
        done += len(flow)
    return {metric: np.concatenate(v) for metric, v in values.items()}


def evaluate_samples(pipe, samples, batch_size=1, resize=None, metrics=('epe',),
                     description=None, progress=True):
    """``{metric: value}`` of ``pipe`` on ``samples`` (NaN for no samples).

    Metrics: 'epe' (masked average end-point error) and 'kitti' (the KITTI outlier share of a
    sample's valid pixels) are means over samples, as the original reported them; 'fl_all'
    is the outlier share of the valid pixels of all samples together, the KITTI benchmark's
    Fl-all; the ``engine.metrics.PIXEL_METRICS`` are pooled over the valid pixels of all
    samples too (the occlusion ones are left out when no sample has occlusion ground truth).
    """
    pixel_metrics = [m for m in metrics if m in PIXEL_METRICS]
    per_sample = [m for m in metrics if m != 'fl_all' and m not in PIXEL_METRICS]
    if 'fl_all' in metrics:
        per_sample += ['fl_outliers', 'fl_pixels']
    pooled = PooledMetrics(pixel_metrics) if pixel_metrics else None
    values = {metric: [] for metric in per_sample}

    def measure(part, run):
        occlusions = ([load_occlusion(s) for s in part]
                      if pooled is not None and pooled.needs_occlusion else None)
        result = per_sample_metrics(
            pipe, [e.img1 for e in run], [e.img2 for e in run], [e.flow for e in run],
            [e.mask for e in run], batch_size=batch_size, resize=resize, metrics=per_sample,
            pooled=pooled, occlusions=occlusions)
        for metric in per_sample:
            values[metric].append(result[metric])

    stream_runs(pipe, samples, batch_size, measure, description, progress)
    values = {metric: np.concatenate(v) if v else np.zeros(0) for metric, v in values.items()}
    means = {metric: float(np.mean(v)) if len(v) else float('nan') for metric, v in values.items()}
    if 'fl_all' in metrics:
        means['fl_all'] = pooled_fl(values['fl_outliers'], values['fl_pixels'])
    if pooled is not None:
        means.update(pooled.values())
    return {metric: means[metric] for metric in metrics if metric in means}


def validate_sets(pipe, validation, batch_size=1):
    """Validation during training: ``{name: {metric: value}}`` of each non-empty
    ``{name: samples}`` set, at the network size each frame rounds up to: the original's mean
    EPE (``epe``) and the pixel-pooled ``engine.metrics.PIXEL_METRICS``, which cost a few
    percent of the forward passes (numpy on the flows the EPE is computed from)."""
    return {name: evaluate_samples(pipe, samples, batch_size, metrics=EPE_METRICS,
                                   description=name)
            for name, samples in validation.items() if samples}


def validation_lines(steps, results):
    """The run log's lines of a validation during training: the original's line
    (``steps=N, chairs=EPE, sintel.clean=EPE``), then one line per set with its pooled metrics
    under ``--valid``'s keys (``steps=N, chairs:epe_all=..., chairs:above1px=..., ...``)."""
    lines = ['steps=%d, %s' % (steps, format_pairs((name, result['epe'])
                                                  for name, result in results.items()))]
    for name, result in results.items():
        pooled = [('%s:%s' % (name, metric), value) for metric, value in result.items()
                  if metric != 'epe']
        if pooled:
            lines.append('steps=%d, %s' % (steps, format_pairs(pooled)))
    return lines


def example_prediction(pipe, validation):
    """(flow, occlusion mask image) of the first pair of the first non-empty validation set,
    or None: what TensorBoard shows of the network at each validation (one more forward pass)."""
    for samples in validation.values():
        if samples:
            example = load_sample(samples[0])
            flow, occ_mask, _ = pipe.predict_pair(example.img1, example.img2)
            return flow, occ_mask_image(occ_mask)
    return None


# --- --valid ------------------------------------------------------------------------------

def validation_sets(benchmark, root):
    """[(name, samples)] of ``benchmark``'s validation splits."""
    sets = []
    for split in benchmark.valid_splits:
        samples = benchmark.lister(root, split)
        if benchmark.per_pass:
            sets += [('%s.%s.%s' % (benchmark.name, split, pass_name), part)
                     for pass_name, part in group_samples(samples).items()]
        else:
            sets.append((benchmark.name, samples))
    return sets


def benchmark_plan():
    """[(benchmark, [(name, samples)] or None when not configured)]: every configured dataset
    found and listed, before any network is built: a wrong root is reported at the start,
    not after the datasets before it."""
    plan = [(benchmark, validation_sets(benchmark, roots.dataset_root(benchmark.root_key))
             if roots.configured(benchmark.root_key) else None) for benchmark in BENCHMARKS]
    check_sets({name: samples for _, sets in plan for name, samples in sets or ()})
    return plan


def validate_checkpoint(pipe, log, steps, batch_size=1, resize=None, progress=True, plan=None):
    """``--valid``: Sintel, KITTI 2012/2015 and FlyingChairs metrics of the loaded checkpoint
    (``plan``: benchmark_plan's, made before the network was built).

    Each result is logged as the original did (``steps=N, sintel.training2.clean:epe=...``);
    KITTI adds ``kitti.2015:fl_all`` (the benchmark's Fl-all, pooled over all valid pixels)
    to the original's ``kitti.2015:kitti`` (the per-image mean of Fl). Returns
    ``[(name, value or None, note)]``; unconfigured datasets are skipped.
    """
    if plan is None:
        plan = benchmark_plan()
    report = []
    for benchmark, sets in plan:
        if sets is None:
            report.append((benchmark.name, None, roots.skip_note(benchmark.root_key)))
            continue
        for name, samples in sets:
            result = evaluate_samples(pipe, samples, batch_size, resize or benchmark.valid_size,
                                      benchmark.metrics, description=name, progress=progress)
            report += _log_results(log, steps, name, result)
    return report


def _log_results(log, steps, name, result):
    """One ``steps=N, NAME:METRIC=value`` line per metric; the report's rows."""
    rows = []
    if hasattr(log, 'release'):
        log.release()   # a log held until its first result (nothing written for a failure)
    for metric, value in result.items():
        entry = '%s:%s' % (name, metric)
        log.log('steps=%d, %s=%s' % (steps, entry, value))
        rows.append((entry, value, ''))
    return rows


def validate_list(pipe, listed, log, steps, batch_size=1, resize=None, progress=True):
    """``--valid`` with a custom dataset config: its checked validation list ``listed`` (a
    ``reader.custom.CustomList``), each pair at its own size rounded up to multiples of 64 as
    predict_new_data.py runs it (or at ``resize``), logged under ``custom.<list stem>``.
    Returns the report's rows."""
    result = evaluate_samples(pipe, listed.samples, batch_size, resize, EPE_METRICS,
                              description=listed.key, progress=progress)
    return _log_results(log, steps, listed.key, result)


def format_report(report):
    width = max(len(name) for name, _, _ in report) if report else 0
    lines = []
    for name, value, note in report:
        lines.append('%-*s  %s' % (width, name, note if value is None else '%.4f' % value))
    return '\n'.join(lines)
