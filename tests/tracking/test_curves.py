"""tracking/curves.py: the smoothing and the figure's data."""
import math

import numpy as np
import pytest

from tracking import curves
from tracking.logformat import ParsedLog
from tests.helpers import ORIGINAL_LOG, PROJECT_LOG, series_values


def test_smoothing_is_a_debiased_moving_average():
    # By hand, weight 0.5: 1; (0.25 + 1.5) / 0.75.
    assert list(curves.smooth([1.0, 3.0], 0.5)) == pytest.approx([1.0, 7 / 3])
    assert list(curves.smooth([1.0, 3.0], 0.0)) == [1.0, 3.0]


def test_the_figure_draws_the_parsed_values():
    runs = curves.read_runs([str(ORIGINAL_LOG), str(PROJECT_LOG)])
    figure = curves.draw_figure(runs, smoothing=0.5)
    drawn = {}
    for ax in figure.axes:
        if ax.get_visible():
            for line in ax.get_lines():
                drawn[(ax.get_title(), line.get_label())] = list(zip(line.get_xdata(),
                                                                     line.get_ydata()))
    titles = [ax.get_title() for ax in figure.axes if ax.get_visible()]
    assert titles[0].startswith('training EPE') and figure.axes[0].get_yscale() == 'log'
    assert titles[1:] == ['validation: sintel.clean', 'validation: sintel.final',
                          'validation: kitti.12', 'validation: kitti.12_2',
                          'validation: chairs', 'validation: sintel']
    assert drawn[(titles[0], 'original_restarts (raw)')] == series_values(runs[0], 'train/epe')
    assert drawn[(titles[0], 'project_run (raw)')] == series_values(runs[1], 'train/epe')
    smoothed = drawn[(titles[0], 'project_run')]
    assert smoothed[1][1] == pytest.approx((30.5 * 0.25 + 29.75 * 0.5) / 0.75)
    assert drawn[('validation: sintel.clean', 'original_restarts')] == [(100, 3.09509539604187),
                                                                         (200, 2.9)]
    assert drawn[('validation: chairs', 'project_run')] == [(1, 28.25), (100, 10.0)]
    legend = [text.get_text() for text in figure.legends[0].get_texts()]
    assert legend == ['original_restarts', 'project_run']


# --- values of a diverged run ---------------------------------------------------------------

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


def test_a_panel_of_only_an_absurd_value_and_an_absurd_step_do_not_fail(tmp_path):
    """matplotlib cannot scale an axis to 1e308 (a ValueError); TensorBoard keeps steps in 64
    bits. Both once stopped plot_logs.py with a traceback, the second after the figure."""
    import plot_logs
    log = tmp_path / 'run.log'
    log.write_text('[2026/12/07 06:43:28] steps=1, epe=1.0, total_time=0.00\n'
                   '[2026/12/07 06:43:30] steps=6, chairs=1e308\n'
                   '[2026/12/07 06:43:31] steps=99999999999999999999999, chairs=1\n')
    out = tmp_path / 'curves.png'
    assert plot_logs.main([str(out), str(log), '--tensorboard', str(tmp_path / 'tb')]) == 0
    assert out.stat().st_size > 1000
    (tmp_path / 'tbf').write_text('a file where the events would go')
    assert plot_logs.main([str(tmp_path / 'f.png'), str(log), '--tensorboard',
                           str(tmp_path / 'tbf')]) == 2
    assert not (tmp_path / 'f.png').exists()   # refused before the figure was written


# --- which validation metrics are drawn ----------------------------------------------------

POOLED_LOG = """\
[2026/12/07 10:00:00] start=0, train=2, val=1, host=h, batch=1
[2026/12/07 10:00:00] seed=1
[2026/12/07 10:00:01] steps=1, epe=3.5, total_time=0.50
[2026/12/07 10:00:02] steps=1, chairs=3.25
[2026/12/07 10:00:02] steps=1, chairs:epe_all=3.0, chairs:above3px=0.25, chairs:epe_s40+=nan
[2026/12/07 10:00:03] steps=2, epe=3.0, total_time=0.50
[2026/12/07 10:00:04] steps=2, chairs=2.75
[2026/12/07 10:00:04] steps=2, chairs:epe_all=2.5, chairs:above3px=0.125, chairs:epe_s40+=9.0
"""


def titles_and_lines(figure):
    return {ax.get_title(): [(list(l.get_xdata()), list(l.get_ydata())) for l in ax.get_lines()]
            for ax in figure.axes if ax.get_visible()}


@pytest.fixture
def pooled_run(tmp_path):
    log = tmp_path / 'pooled.log'
    log.write_text(POOLED_LOG)
    return curves.read_runs([str(log)])


def test_the_pooled_metrics_are_drawn_only_when_asked_for(pooled_run):
    drawn = titles_and_lines(curves.draw_figure(pooled_run))
    assert [t for t in drawn if not t.startswith('training')] == ['validation: chairs']
    drawn = titles_and_lines(curves.draw_figure(pooled_run, metrics=('above3px', 'epe_s40_')))
    assert [t for t in drawn if not t.startswith('training')] == [
        'validation: chairs/above3px', 'validation: chairs/epe_s40_']
    assert drawn['validation: chairs/above3px'] == [([1, 2], [0.25, 0.125])]
    assert drawn['validation: chairs/epe_s40_'] == [([2], [9.0])]   # the NaN is not drawn
    assert len(curves.panels(pooled_run, 'all')) == 1 + 4


def test_metrics_are_named_as_logged_and_one_that_no_log_holds_is_an_error(pooled_run, tmp_path):
    from common.errors import UserError
    log = pooled_run[0].path
    out = tmp_path / 'c.png'
    lines = curves.plot_logs(str(out), [log], metrics=['epe_s40+', 'epe'])
    assert lines[-1].endswith(': 3 panel(s), 1 run(s)') and out.exists()
    with pytest.raises(UserError, match=r'^--metrics above9px: not in .*pooled.log \(they log: '
                                        r'epe epe_all above3px epe_s40_\)$'):
        curves.plot_logs(str(tmp_path / 'd.png'), [log], metrics=['above9px'])
    assert not (tmp_path / 'd.png').exists()
