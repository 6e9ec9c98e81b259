"""tracking/curves.py: the smoothing and the figure's data."""
import pytest

from tracking import curves
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
