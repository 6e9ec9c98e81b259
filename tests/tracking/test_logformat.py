"""tracking/logformat.py: reading run logs back: the original's published log format (restarts,
header changes, repeated keys, bad lines) and this project's, and their tag names."""
import datetime

from tracking import curves
from tracking.logformat import read_log
from tests.helpers import ORIGINAL_LOG, PROJECT_LOG, series_values


def stamp(text):
    return datetime.datetime.strptime(text, '%Y/%m/%d %H:%M:%S').timestamp()


def test_original_log_with_a_restart_header_changes_and_bad_lines():
    parsed = read_log(str(ORIGINAL_LOG))
    assert parsed.run_id == 'original_restarts'
    # The restart at 100 supersedes the 150 and 200 lines logged before it (epe and time each).
    assert series_values(parsed, 'train/epe') == [
        (1, 0.7698841021831714), (2, 0.9073720914464982), (50, 4.39419099062467),
        (100, 4.202002264648873), (150, 3.5), (200, 3.25), (250, 2.875)]
    assert series_values(parsed, 'train/seconds_per_step') == [
        (1, 0.0), (2, 16.54), (50, 0.23), (100, 0.16), (150, 0.30), (200, 0.20), (250, 0.125)]
    assert parsed.superseded == 4
    assert series_values(parsed, 'val/sintel.clean') == [(100, 3.09509539604187), (200, 2.9)]
    assert series_values(parsed, 'val/sintel.final') == [(100, 5.0591230392456055), (200, 4.75)]
    # The original's KITTI runs logged the outlier share under the EPE's key, at the same step.
    assert series_values(parsed, 'val/kitti.12') == [(200, 0.9254606366157532)]
    assert series_values(parsed, 'val/kitti.12_2') == [(200, 0.02689877524971962)]
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
    parsed = read_log(str(PROJECT_LOG))
    assert series_values(parsed, 'train/epe') == [(1, 30.5), (2, 29.75), (50, 20.0), (100, 12.5),
                                                  (150, 8.0)]
    assert series_values(parsed, 'val/chairs') == [(1, 28.25), (100, 10.0)]
    assert series_values(parsed, 'val/sintel') == [(1, 14.5), (100, 8.5)]
    assert parsed.bad_lines == [] and parsed.superseded == 0
    assert [s.steps for s in parsed.starts] == [0, 100]
    assert parsed.texts[-1][:2] == ('run/note', 100)   # stopped=..., commas and all


def test_tag_names_of_valid_logs_and_duplicates():
    runs = curves.read_runs([str(ORIGINAL_LOG)])
    assert 'val/kitti.12_2' in runs[0].series
    from tracking.logformat import line_scalars, parse_pairs
    assert line_scalars(parse_pairs('steps=5, kitti.2015:fl_all=0.25')) == (
        5, [('val/kitti.2015/fl_all', 0.25)])
