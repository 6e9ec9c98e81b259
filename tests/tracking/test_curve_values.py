"""plot_logs.py's figure with values a diverged run logs: NaN and infinity are not drawn and do
not end the smoothed curve; a huge finite value does not flatten the panel."""
import math

import numpy as np

from tracking import curves
from tracking.logformat import ParsedLog


def run_with(points, tag='train/epe'):
    run = ParsedLog('run.log', 'run')
    run.series[tag] = [(steps, value, 0.0) for steps, value in points]
    return run


def lines_of(figure):
    return {line.get_label(): (list(line.get_xdata()), list(line.get_ydata()))
            for line in figure.axes[0].get_lines()}


def test_nan_and_infinity_are_left_out_and_the_smoothed_curve_goes_on():
    run = run_with([(1, 4.0), (2, float('nan')), (3, 2.0), (4, float('inf')), (5, 1.0)])
    lines = lines_of(curves.draw_figure([run], smoothing=0.5))
    assert lines['run (raw)'] == ([1, 3, 5], [4.0, 2.0, 1.0])
    steps, smoothed = lines['run']
    assert steps == [1, 3, 5] and all(math.isfinite(v) for v in smoothed)
    # the debiased average of 4, 2, 1 with weight 0.5: 4, (2 + 0.5 * 4) / 1.5, ...
    np.testing.assert_allclose(smoothed, [4.0, 8 / 3, (1 + 0.5 * 2 + 0.25 * 4) / 1.75], rtol=1e-6)
    assert 'run run, 5 training points' in curves.summary(run)
    assert curves.summary(run).endswith('2 NaN or infinite value(s) not drawn')


def test_a_huge_value_is_left_off_the_axis_and_the_panel_says_so():
    run = run_with([(1, 5.0), (2, 1e308), (3, 3.0), (4, 2.0)], tag='val/chairs')
    figure = curves.draw_figure([run])
    axis = figure.axes[0]
    low, high = axis.get_ylim()
    assert high < 10 and low > 0
    assert [text.get_text() for text in axis.texts] == ['1 value(s) off the axis (up to 1e+308)']


def test_a_panel_without_outliers_keeps_matplotlibs_own_limits():
    run = run_with([(1, 5.0), (2, 4.0), (3, 3.0)], tag='val/chairs')
    axis = curves.draw_figure([run]).axes[0]
    assert len(axis.texts) == 0 and axis.get_ylim()[1] < 6
