"""The metrics the literature reports besides the original's, pooled over the pixels of a set.

For each pair, ``err`` is the end-point error ``sqrt(du^2 + dv^2)`` of every pixel (no epsilon:
the loss's 1e-8 is a training device), ``w`` the pixel's weight (its valid mask: 0 or 1, a
fraction where sparse ground truth was resized) and ``|gt|`` the length of its true flow.
Every metric is a ratio of sums over all pixels of all pairs of the set (pooled, as the Sintel
and KITTI benchmarks count; the original's per-image means ``epe`` and ``kitti`` are kept as
they were, in ``engine.evaluate``):

=============  =================================================================
``epe_all``    sum(w err) / sum(w): the EPE of all valid pixels (Sintel's "EPE all")
``above1px``   sum(w [err > 1]) / sum(w): the share of valid pixels off by more than 1 px
``above3px``   the same above 3 px
``above5px``   the same above 5 px
``epe_s0-10``  sum(w err [|gt| < 10]) / sum(w [|gt| < 10]) (Sintel's s0-10)
``epe_s10-40`` the same for 10 <= |gt| < 40 (s10-40)
``epe_s40+``   the same for |gt| >= 40 (s40+)
``epe_noc``    sum(w err [not occluded]) / sum(w [not occluded])
``epe_occ``    sum(w err [occluded]) / sum(w [occluded])
=============  =================================================================

A ratio whose denominator is 0 (no pixel moves 40 px, no pixel is occluded) is NaN.
``epe_noc`` and ``epe_occ`` are pooled over the pairs that have occlusion ground truth and
are reported only when at least one pair of the set has it.
"""
import numpy as np

THRESHOLDS_PX = (1, 3, 5)
SPEED_BINS = (('epe_s0-10', 0, 10), ('epe_s10-40', 10, 40), ('epe_s40+', 40, np.inf))
OCCLUSION_METRICS = ('epe_noc', 'epe_occ')
PIXEL_METRICS = (('epe_all',) + tuple('above%dpx' % t for t in THRESHOLDS_PX)
                 + tuple(name for name, _, _ in SPEED_BINS) + OCCLUSION_METRICS)


def pixel_sums(flow, label, weight, occluded=None):
    """``{metric: (numerator, denominator)}`` of one pair's pixels: flow and label H x W x 2
    (any one channel order, the same for both), weight H x W, occluded H x W bool or None
    (then the occlusion metrics are left out)."""
    flow, label = np.asarray(flow, np.float64), np.asarray(label, np.float64)
    weight = np.asarray(weight, np.float64)
    err = np.sqrt(((flow - label) ** 2).sum(axis=-1))
    speed = np.sqrt((label ** 2).sum(axis=-1))
    total = weight.sum()
    sums = {'epe_all': ((weight * err).sum(), total)}
    for threshold in THRESHOLDS_PX:
        sums['above%dpx' % threshold] = ((weight * (err > threshold)).sum(), total)
    for name, low, high in SPEED_BINS:
        inside = weight * ((speed >= low) & (speed < high))
        sums[name] = ((inside * err).sum(), inside.sum())
    if occluded is not None:
        occluded = np.asarray(occluded, bool)
        for name, part in (('epe_noc', ~occluded), ('epe_occ', occluded)):
            inside = weight * part
            sums[name] = ((inside * err).sum(), inside.sum())
    return sums


class PooledMetrics:
    """Sums of ``pixel_sums`` over the pairs of a set; ``values()`` the pooled metrics."""

    def __init__(self, metrics=PIXEL_METRICS):
        unknown = set(metrics) - set(PIXEL_METRICS)
        if unknown:
            raise ValueError('unknown pixel metrics %s' % sorted(unknown))
        self.metrics = tuple(metrics)
        self.sums = {}

    @property
    def needs_occlusion(self):
        return any(m in OCCLUSION_METRICS for m in self.metrics)

    def add(self, flow, label, weight, occluded=None):
        for metric, (numerator, denominator) in pixel_sums(flow, label, weight, occluded).items():
            if metric in self.metrics:
                old = self.sums.get(metric, (0.0, 0.0))
                self.sums[metric] = (old[0] + numerator, old[1] + denominator)

    def values(self):
        """``{metric: value}`` in ``metrics`` order; NaN for an empty denominator; the
        occlusion metrics only when some pair had occlusion ground truth."""
        values = {}
        for metric in self.metrics:
            if metric in OCCLUSION_METRICS and metric not in self.sums:
                continue
            numerator, denominator = self.sums.get(metric, (0.0, 0.0))
            values[metric] = numerator / denominator if denominator else float('nan')
        return values
