"""``plot_logs.py``: training curves of one or more run logs on one figure, and their
conversion to TensorBoard events, so that a reproduction and the authors' published runs
can be compared.

Reads this project's logs and the original's alike (``logformat.read_log``): the training EPE
(the log's moving average, smoothed once more for the eye) and every validation metric
against steps, one panel each, one colour per run.
"""
import math
import re
import os

import numpy as np

from common import files
from common.errors import UserError

from .logformat import TRAIN_PREFIX, VALIDATION_PREFIX, MovingAverage, read_log, tag_name

FORMATS = ('.png', '.svg')
TRAINING_TAG = TRAIN_PREFIX + 'epe'
LOG_SCALE_RATIO = 5     # a panel whose values span more than this factor gets a log y axis
# A value this many times the panel's median magnitude (a diverged run's 1e30) is left off
# the axis, which would otherwise flatten every other value: the panel says how many.
OUTLIER_RATIO = 1e3
# A magnitude no metric of a sane run reaches; matplotlib cannot even scale an axis to 1e308.
HUGE = 1e15
DEFAULT_SMOOTHING = 0.95
# The validation metrics drawn unless --metrics says otherwise: the original's (a log's
# ``chairs=`` values are EPEs) and --valid's KITTI Fl; the pooled ones (above3px, ...) on request.
DEFAULT_METRICS = ('epe', 'kitti', 'fl_all')
_COLUMNS = 3


def smooth(values, weight):
    """Exponential moving average with bias correction, as the log's own (weight 0: unchanged)."""
    average, out = MovingAverage(weight), []
    for value in values:
        average.update(value)
        out.append(average.average)
    return np.array(out)


def finite(steps, values):
    """The points with a finite value: a NaN or infinity (a diverged run) is not drawn, and
    does not stop the smoothed curve."""
    keep = np.isfinite(values)
    return steps[keep], values[keep]


def axis_outliers(values):
    """The finite values too far from the panel's others to share an axis with them."""
    magnitudes = np.abs(np.asarray([v for v in values if math.isfinite(v)]))
    if len(magnitudes) < 2:
        return [v for v in values if math.isfinite(v) and abs(v) > HUGE]
    typical = np.percentile(magnitudes, 50, method='lower')
    if typical <= 0:
        typical = magnitudes[magnitudes > 0].min() if (magnitudes > 0).any() else 0
    return [v for v in values if math.isfinite(v) and (
        abs(v) > HUGE or (typical and abs(v) > OUTLIER_RATIO * typical))]


def log_scale_helps(values):
    shown = [v for v in values if math.isfinite(v)]
    return bool(shown) and min(shown) > 0 and max(shown) / min(shown) > LOG_SCALE_RATIO


def ylabel(tag):
    if tag == TRAINING_TAG:
        return 'EPE (px), moving average'
    if re.search(r'_\d+$', tag):   # the original's KITTI logs: Fl under the EPE's name
        return 'value logged second'
    metric = tag_metric(tag)
    if metric.startswith('epe'):   # epe, epe_all, epe_s0-10, epe_noc, ...
        return 'EPE (px)'
    if metric.startswith('above'):
        return 'share of valid pixels'
    return {'kitti': 'outlier share (mean)', 'fl_all': 'outlier share'}.get(metric, metric)


def tag_metric(tag):
    """The metric of a validation tag: ``val/chairs`` (the original's line) -> 'epe',
    ``val/sintel.clean/above3px`` -> 'above3px'."""
    return tag[len(VALIDATION_PREFIX):].partition('/')[2] or 'epe'


def panels(runs, metrics=DEFAULT_METRICS):
    """The tags to draw, one panel each: training EPE first, then the validation tags of
    ``metrics`` (a tuple of names, or ``'all'``) in the order they first appear."""
    tags = [TRAINING_TAG] if any(TRAINING_TAG in run.series for run in runs) else []
    for run in runs:
        tags += [t for t in run.series if t.startswith(VALIDATION_PREFIX) and t not in tags
                 and (metrics == 'all' or tag_metric(t) in metrics)]
    return tags


def logged_metrics(runs):
    """The validation metrics the runs log, in the order they first appear."""
    return list(dict.fromkeys(tag_metric(t) for run in runs for t in run.series
                              if t.startswith(VALIDATION_PREFIX)))


def draw_figure(runs, smoothing=DEFAULT_SMOOTHING, metrics=DEFAULT_METRICS):
    """A matplotlib Figure of the ParsedLogs ``runs``; each drawn line's label is the run id
    (raw training values: ``RUN (raw)``), its data the logged (steps, value) points."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot, ticker
    tags = panels(runs, metrics)
    columns = min(_COLUMNS, len(tags))
    rows = math.ceil(len(tags) / columns)
    figure, axes = pyplot.subplots(rows, columns, figsize=(5.6 * columns, 3.9 * rows + 0.6),
                                   squeeze=False)
    colours = pyplot.rcParams['axes.prop_cycle'].by_key()['color']
    steps_format = ticker.FuncFormatter(
        lambda x, _: '%gk' % (x / 1000) if abs(x) >= 1000 else '%g' % x)
    for ax, tag in zip(axes.flat, tags):
        values = []
        for k, run in enumerate(runs):
            points = run.series.get(tag)
            if not points:
                continue
            colour = colours[k % len(colours)]
            steps, value = finite(np.array([p[0] for p in points]),
                                  np.array([p[1] for p in points], dtype=float))
            values += list(value)
            if tag == TRAINING_TAG:
                ax.plot(steps, value, color=colour, alpha=0.2, linewidth=0.7,
                        label='%s (raw)' % run.run_id)
                ax.plot(steps, smooth(value, smoothing), color=colour, linewidth=1.4,
                        label=run.run_id)
                for start in run.starts[1:]:
                    ax.axvline(start.steps, color=colour, linestyle=':', linewidth=1)
            else:
                ax.plot(steps, value, color=colour, marker='o', markersize=2.5, linewidth=1,
                        label=run.run_id)
        title = tag[len(VALIDATION_PREFIX):] if tag.startswith(VALIDATION_PREFIX) else tag
        ax.set_title(('training EPE (smoothed %g; dotted: restarts)' % smoothing
                      if tag == TRAINING_TAG else 'validation: %s' % title), fontsize=10)
        ax.set_xlabel('steps')
        ax.set_ylabel(ylabel(tag))
        ax.xaxis.set_major_formatter(steps_format)
        outliers = axis_outliers(values)
        if outliers:
            values = [v for v in values if v not in outliers]
            ax.text(0.99, 0.98, '%d value(s) off the axis (up to %.3g)'
                    % (len(outliers), max(outliers, key=abs)), transform=ax.transAxes,
                    ha='right', va='top', fontsize=8, color='0.3')
        log_scale = log_scale_helps(values)
        if outliers:
            low, high = (min(values), max(values)) if values else (0.0, 1.0)
            if log_scale:
                ax.set_ylim(low / 1.2, high * 1.2)
            else:
                margin = 0.05 * (high - low) or 0.05 * abs(high) or 1
                ax.set_ylim(low - margin, high + margin)
        if log_scale:
            ax.set_yscale('log')
            ax.yaxis.set_major_locator(ticker.LogLocator(subs=(1, 2, 5)))
            ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda y, _: '%g' % y))
            ax.yaxis.set_minor_formatter(ticker.NullFormatter())
        ax.grid(True, which='major', alpha=0.3)
    for ax in list(axes.flat)[len(tags):]:
        ax.set_visible(False)
    handles = [pyplot.Line2D([], [], color=colours[k % len(colours)], linewidth=2)
               for k in range(len(runs))]
    figure.legend(handles, [run.run_id for run in runs], loc='upper center',
                  ncol=min(len(runs), 6), frameon=False)
    figure.tight_layout(rect=(0, 0, 1, 1 - 0.5 / figure.get_figheight()))
    return figure


def read_runs(paths):
    """ParsedLogs of ``paths``, their run ids made unique (``RUN``, ``RUN-2``, ...)."""
    runs, seen = [], {}
    for path in paths:
        if not os.path.isfile(path):
            raise UserError('%s: no such file' % path)
        run = read_log(path)
        seen[run.run_id] = seen.get(run.run_id, 0) + 1
        if seen[run.run_id] > 1:
            run.run_id = '%s-%d' % (run.run_id, seen[run.run_id])
        runs.append(run)
    return runs


def summary(run):
    """One line on what was read from a run's log, bad lines included."""
    training = len(run.series.get(TRAINING_TAG, ()))
    validation = sorted({p[0] for t, ps in run.series.items() if t.startswith(VALIDATION_PREFIX)
                         for p in ps})
    line = '%s: run %s, %d training points, validation at %d steps, %d start(s)' % (
        run.path, run.run_id, training, len(validation), len(run.starts))
    if run.superseded:
        line += ', %d points superseded by a restart' % run.superseded
    non_finite = sum(not math.isfinite(p[1]) for points in run.series.values() for p in points)
    if non_finite:
        line += ', %d NaN or infinite value(s) not drawn' % non_finite
    if run.bad_lines:
        number, reason = run.bad_lines[0]
        line += '; %d bad line(s) skipped (first: line %d: %s)' % (len(run.bad_lines), number,
                                                                   reason)
    return line


def plot_logs(out, paths, tensorboard=None, smoothing=DEFAULT_SMOOTHING, metrics=None):
    """Draw the runs logged in ``paths`` to ``out`` (.png or .svg) and, with ``tensorboard``,
    write each as events (all of their metrics) under ``tensorboard/RUN/``; returns the lines
    to print. ``metrics``: the validation metrics to draw (names as logged, or ``'all'``;
    None: ``DEFAULT_METRICS``); a name that no run logs is an error."""
    extension = os.path.splitext(out)[1].lower()
    if extension not in FORMATS:
        raise UserError('%s: the figure must be %s' % (out, ' or '.join(FORMATS)))
    if not 0 <= smoothing < 1:
        raise UserError('--smoothing %g: must be in [0, 1)' % smoothing)
    files.check_output_paths([out], inputs=paths)
    if tensorboard is not None:
        files.prove_writable(tensorboard)   # before the figure is drawn and written
    runs = read_runs(paths)
    lines = [summary(run) for run in runs]
    if not any(run.points() for run in runs):
        raise UserError('%s: no steps=... lines to plot' % ', '.join(paths))
    if metrics is None:
        metrics = DEFAULT_METRICS
    elif metrics != 'all':
        metrics = tuple(tag_name(m) for m in metrics)   # epe_s40+ is logged as epe_s40_
        missing = [m for m in metrics if m not in logged_metrics(runs)]
        if missing:
            raise UserError('--metrics %s: not in %s (they log: %s)' % (
                ' '.join(missing), ', '.join(paths), ' '.join(logged_metrics(runs)) or 'none'))
    figure = draw_figure(runs, smoothing, metrics)
    with files.atomic_output(out, suffix=extension) as tmp:
        figure.savefig(tmp, format=extension[1:], dpi=110)
    lines.append('%s: %d panel(s), %d run(s)' % (out, len(panels(runs, metrics)), len(runs)))
    if tensorboard is not None:
        lines += write_tensorboard(runs, tensorboard)
    return lines


def write_tensorboard(runs, folder):
    from .events import write_log_events
    lines = []
    for run in runs:
        target = os.path.join(folder, run.run_id)
        try:
            count = write_log_events(run, target)
        except OSError as error:
            raise UserError('%s: cannot write events (%s)'
                            % (target, error.strerror or error)) from None
        lines.append('%s: %d scalars' % (target, count))
    lines.append('view with: tensorboard --logdir %s' % folder)
    return lines
