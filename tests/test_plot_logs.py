"""plot_logs.py and the run-log reader: the original's published log format (restarts, header
changes, repeated keys, bad lines) and this project's, the figure's data, TensorBoard output."""
import datetime

import cv2
import pytest

import plot_logs
from tracking import curves
from tracking.logformat import read_log

from conftest import DATA

ORIGINAL = DATA / 'runlogs' / 'original_restarts.log'
PROJECT = DATA / 'runlogs' / 'project_run.log'


def stamp(text):
    return datetime.datetime.strptime(text, '%Y/%m/%d %H:%M:%S').timestamp()


def values(parsed, tag):
    return [(steps, value) for steps, value, _ in parsed.series[tag]]


def test_original_log_with_a_restart_header_changes_and_bad_lines():
    parsed = read_log(str(ORIGINAL))
    assert parsed.run_id == 'original_restarts'
    # The restart at 100 supersedes the 150 and 200 lines logged before it (epe and time each).
    assert values(parsed, 'train/epe') == [
        (1, 0.7698841021831714), (2, 0.9073720914464982), (50, 4.39419099062467),
        (100, 4.202002264648873), (150, 3.5), (200, 3.25), (250, 2.875)]
    assert values(parsed, 'train/seconds_per_step') == [
        (1, 0.0), (2, 16.54), (50, 0.23), (100, 0.16), (150, 0.30), (200, 0.20), (250, 0.125)]
    assert parsed.superseded == 4
    assert values(parsed, 'val/sintel.clean') == [(100, 3.09509539604187), (200, 2.9)]
    assert values(parsed, 'val/sintel.final') == [(100, 5.0591230392456055), (200, 4.75)]
    # The original's KITTI runs logged the outlier share under the EPE's key, at the same step.
    assert values(parsed, 'val/kitti.12') == [(200, 0.9254606366157532)]
    assert values(parsed, 'val/kitti.12_2') == [(200, 0.02689877524971962)]
    assert parsed.series['val/sintel.clean'][1][2] == stamp('2019/10/01 08:01:20')
    assert [(s.steps, s.line_number, s.fields['batch']) for s in parsed.starts] == [
        (0, 1, '4'), (100, 11, '8')]
    assert parsed.starts[1].fields['host'] == 'msragpux04'
    assert parsed.starts[1].options.endswith("checkpoint='dbbSep30:100'")
    assert [number for number, _ in parsed.bad_lines] == [10, 17]
    assert 'abc' in parsed.bad_lines[1][1]
    assert [(tag, steps) for tag, steps, _, _ in parsed.texts] == [
        ('run/start', 0), ('run/options', 0), ('run/start', 100), ('run/options', 100)]


def test_project_log_with_a_resume_and_a_stop_line():
    parsed = read_log(str(PROJECT))
    assert values(parsed, 'train/epe') == [(1, 30.5), (2, 29.75), (50, 20.0), (100, 12.5),
                                           (150, 8.0)]
    assert values(parsed, 'val/chairs') == [(1, 28.25), (100, 10.0)]
    assert values(parsed, 'val/sintel') == [(1, 14.5), (100, 8.5)]
    assert parsed.bad_lines == [] and parsed.superseded == 0
    assert [s.steps for s in parsed.starts] == [0, 100]
    assert parsed.texts[-1][:2] == ('run/note', 100)   # stopped=..., commas and all


def test_smoothing_is_a_debiased_moving_average():
    # By hand, weight 0.5: 1; (0.25 + 1.5) / 0.75.
    assert list(curves.smooth([1.0, 3.0], 0.5)) == pytest.approx([1.0, 7 / 3])
    assert list(curves.smooth([1.0, 3.0], 0.0)) == [1.0, 3.0]


def test_the_figure_draws_the_parsed_values():
    runs = curves.read_runs([str(ORIGINAL), str(PROJECT)])
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
    assert drawn[(titles[0], 'original_restarts (raw)')] == values(runs[0], 'train/epe')
    assert drawn[(titles[0], 'project_run (raw)')] == values(runs[1], 'train/epe')
    smoothed = drawn[(titles[0], 'project_run')]
    assert smoothed[1][1] == pytest.approx((30.5 * 0.25 + 29.75 * 0.5) / 0.75)
    assert drawn[('validation: sintel.clean', 'original_restarts')] == [(100, 3.09509539604187),
                                                                         (200, 2.9)]
    assert drawn[('validation: chairs', 'project_run')] == [(1, 28.25), (100, 10.0)]
    legend = [text.get_text() for text in figure.legends[0].get_texts()]
    assert legend == ['original_restarts', 'project_run']


def test_cli_writes_the_figure_and_tensorboard_events(tmp_path, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    out = tmp_path / 'curves.png'
    events = tmp_path / 'tb'
    assert plot_logs.main([str(out), str(ORIGINAL), str(PROJECT), '--tensorboard',
                           str(events)]) == 0
    printed = capsys.readouterr().out
    assert '2 bad line(s) skipped (first: line 10:' in printed
    assert '4 points superseded by a restart' in printed
    image = cv2.imread(str(out))
    assert image is not None and image.shape[0] > 500 and image.shape[1] > 1000
    for log in (ORIGINAL, PROJECT):
        parsed = read_log(str(log))
        reader = EventAccumulator(str(events / parsed.run_id))
        reader.Reload()
        assert sorted(reader.Tags()['scalars']) == sorted(parsed.series)
        for tag, points in parsed.series.items():
            scalars = reader.Scalars(tag)
            assert [s.step for s in scalars] == [p[0] for p in points]
            assert [s.value for s in scalars] == pytest.approx([p[1] for p in points], rel=1e-6)
            assert [s.wall_time for s in scalars] == [p[2] for p in points]


def test_svg_too(tmp_path, capsys):
    out = tmp_path / 'curves.svg'
    assert plot_logs.main([str(out), str(PROJECT)]) == 0
    assert out.read_text().lstrip().startswith('<?xml') and '<svg' in out.read_text()


@pytest.mark.parametrize('case', ['extension', 'missing', 'nothing'])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, case):
    garbage = tmp_path / 'garbage.log'
    garbage.write_text('not a log line\n[2020/01/01 00:00:00] start=0, batch=4\n')
    out = tmp_path / ('curves.pdf' if case == 'extension' else 'curves.png')
    logs = {'extension': [PROJECT], 'missing': [tmp_path / 'none.log'], 'nothing': [garbage]}[case]
    assert plot_logs.main([str(out)] + [str(p) for p in logs]) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and err.count('\n') == 1
    assert {'extension': 'curves.pdf', 'missing': 'none.log', 'nothing': 'garbage.log'}[case] in err
    assert not out.exists()
