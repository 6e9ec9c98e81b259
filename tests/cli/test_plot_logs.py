"""plot_logs.py: the figure and TensorBoard events from run logs, and one-line errors."""
import cv2
import pytest

import plot_logs
from tracking.logformat import read_log
from tests.helpers import ORIGINAL_LOG, PROJECT_LOG


@pytest.mark.slow
def test_cli_writes_the_figure_and_tensorboard_events(tmp_path, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    out = tmp_path / 'curves.png'
    events = tmp_path / 'tb'
    assert plot_logs.main([str(out), str(ORIGINAL_LOG), str(PROJECT_LOG), '--tensorboard',
                           str(events)]) == 0
    printed = capsys.readouterr().out
    assert '2 bad line(s) skipped (first: line 10:' in printed
    assert '4 points superseded by a restart' in printed
    image = cv2.imread(str(out))
    assert image is not None and image.shape[0] > 500 and image.shape[1] > 1000
    for log in (ORIGINAL_LOG, PROJECT_LOG):
        parsed = read_log(str(log))
        reader = EventAccumulator(str(events / parsed.run_id))
        reader.Reload()
        assert sorted(reader.Tags()['scalars']) == sorted(parsed.series)
        for tag, points in parsed.series.items():
            scalars = reader.Scalars(tag)
            assert [s.step for s in scalars] == [p[0] for p in points]
            assert [s.value for s in scalars] == pytest.approx([p[1] for p in points], rel=1e-6)
            assert [s.wall_time for s in scalars] == [p[2] for p in points]


@pytest.mark.slow
def test_svg_too(tmp_path, capsys):
    out = tmp_path / 'curves.svg'
    assert plot_logs.main([str(out), str(PROJECT_LOG)]) == 0
    assert out.read_text().lstrip().startswith('<?xml') and '<svg' in out.read_text()


@pytest.mark.parametrize('case', ['extension', 'missing', 'nothing'])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, case):
    garbage = tmp_path / 'garbage.log'
    garbage.write_text('not a log line\n[2020/01/01 00:00:00] start=0, batch=4\n')
    out = tmp_path / ('curves.pdf' if case == 'extension' else 'curves.png')
    logs = {'extension': [PROJECT_LOG], 'missing': [tmp_path / 'none.log'], 'nothing': [garbage]}[case]
    assert plot_logs.main([str(out)] + [str(p) for p in logs]) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and err.count('\n') == 1
    assert {'extension': 'curves.pdf', 'missing': 'none.log', 'nothing': 'garbage.log'}[case] in err
    assert not out.exists()


def test_a_metric_that_no_log_holds_is_one_line_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / 'curves.png'
    assert plot_logs.main([str(out), str(PROJECT_LOG), '--metrics', 'above3px']) == 2
    err = capsys.readouterr().err
    assert err == 'error: --metrics above3px: not in %s (they log: epe)\n' % PROJECT_LOG
    assert not out.exists()
