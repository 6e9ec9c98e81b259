"""TensorBoard events: a debug training run read back with TensorBoard's own reader, the tags
shared with converted logs, resumes, and failures that never stop the run."""
import re
from pathlib import Path

import cv2
import mxnet as mx
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import main
import plot_logs
from tracking import curves
from tracking.logformat import read_log
from tracking.events import EventSink
from tracking.runlog import RunLog, events_folder

from conftest import DATA
from test_training import SAMPLE, write_small_chairs_config


def event_reader(folder):
    reader = EventAccumulator(str(folder), size_guidance={'scalars': 0, 'images': 0})
    reader.Reload()
    return reader


def steps_and_values(reader, tag):
    return [(s.step, s.value) for s in reader.Scalars(tag)]


def test_a_debug_training_run_writes_events_that_tensorboard_reads(tmp_path, capsys):
    from common.config import load_config
    from engine.train import RunOptions, run_training
    write_small_chairs_config(tmp_path)
    roots = tmp_path / 'roots.yaml'
    roots.write_text('chairs: %s\n' % (SAMPLE / 'FlyingChairs_release'))
    result = run_training(load_config('MaskFlownet_S.yaml'), load_config(tmp_path / 'small.yaml'),
                          [mx.cpu()], RunOptions(max_steps=2, roots_file=roots, debug=True, seed=1,
                                                 weights_dir=str(tmp_path / 'w'),
                                                 logs_dir=str(tmp_path / 'l')))
    log = tmp_path / 'l' / 'debug' / ('%s.log' % result.run_id)
    folder = tmp_path / 'l' / 'debug' / 'tensorboard' / result.run_id
    assert Path(events_folder(str(log))) == folder
    reader = event_reader(folder)
    assert set(reader.Tags()['scalars']) == {'train/epe', 'train/seconds_per_step', 'train/lr',
                                             'val/chairs'}
    # The values the text log holds, read with a pattern of their own.
    text = log.read_text()
    epe = [(int(s), float(v)) for s, v in re.findall(r'steps=(\d+), epe=([^,]+),', text)]
    chairs = [(int(s), float(v)) for s, v in re.findall(r'steps=(\d+), chairs=(\S+)', text)]
    assert [s for s, _ in epe] == [1, 2] and [s for s, _ in chairs] == [1, 2]
    assert steps_and_values(reader, 'train/epe') == [(s, pytest.approx(v, rel=1e-6))
                                                     for s, v in epe]
    assert steps_and_values(reader, 'val/chairs') == [(s, pytest.approx(v, rel=1e-6))
                                                      for s, v in chairs]
    # MaskFlownet_S.yaml: 1e-4 up to step 400000.
    assert steps_and_values(reader, 'train/lr') == [(1, pytest.approx(1e-4)),
                                                    (2, pytest.approx(1e-4))]
    # One validation pair's flow colours and occlusion mask at each validation: the first
    # (the only) Chairs validation pair, at its own size.
    size = cv2.imread(str(SAMPLE / 'FlyingChairs_release' / 'data' / '00002_img1.ppm')).shape[:2]
    assert set(reader.Tags()['images']) == {'val/flow', 'val/occ_mask'}
    for tag in ('val/flow', 'val/occ_mask'):
        images = reader.Images(tag)
        assert [i.step for i in images] == [1, 2]
        assert (images[0].height, images[0].width) == size
        assert images[0].encoded_image_string.startswith(b'\x89PNG')
    # A converted log gets the same scalar tags and values, and plots.
    parsed = read_log(str(log))
    assert set(parsed.series) == set(reader.Tags()['scalars']) - {'train/lr'}
    assert [(s, v) for s, v, _ in parsed.series['train/epe']] == epe
    out = tmp_path / 'curves.png'
    assert plot_logs.main([str(out), str(log)]) == 0 and out.stat().st_size > 1000
    assert 'warning' not in capsys.readouterr().err


def write_run(log_path, start, steps_and_epe):
    log = RunLog(str(log_path), sinks=[EventSink(events_folder(str(log_path)))])
    log.log('start=%d, train=8, val=1, host=h, batch=1' % start)
    log.log("seed=1")
    for steps, epe in steps_and_epe:
        log.log('steps=%d, epe=%s, total_time=0.50' % (steps, epe))
    log.close()


def test_a_resume_hides_the_steps_it_redoes_as_the_log_reader_drops_them(tmp_path):
    log_path = tmp_path / 'logs' / 'abcJan01-0000.log'
    write_run(log_path, 0, [(1, 9.0), (2, 8.0), (3, 7.0), (4, 6.0)])
    write_run(log_path, 2, [(3, 5.5), (4, 5.0), (5, 4.5)])   # resumed from the step-2 checkpoint
    expected = [(1, 9.0), (2, 8.0), (3, 5.5), (4, 5.0), (5, 4.5)]
    assert steps_and_values(event_reader(events_folder(str(log_path))), 'train/epe') == expected
    parsed = read_log(str(log_path))
    assert [(s, v) for s, v, _ in parsed.series['train/epe']] == expected
    assert parsed.superseded == 4   # epe and seconds_per_step at steps 3 and 4


def test_events_that_cannot_be_written_warn_once_and_the_log_goes_on(tmp_path, capsys):
    log_path = tmp_path / 'run.log'
    (tmp_path / 'tensorboard').write_text('a file where the events folder would go')
    log = RunLog(str(log_path), sinks=[EventSink(events_folder(str(log_path)))])
    log.log('start=0, train=1, val=1, host=h, batch=1')
    log.log('steps=1, epe=2.5, total_time=0.00')
    log.learning_rate(1, 1e-4)
    log.close()
    assert log_path.read_text().count('\n') == 2
    err = capsys.readouterr().err
    assert err.count('warning: TensorBoard events') == 1 and err.count('\n') == 1


def test_a_failing_image_prediction_warns_and_training_goes_on(tmp_path, capsys):
    log = RunLog(str(tmp_path / 'run.log'), sinks=[EventSink(str(tmp_path / 'tensorboard' / 'run'))])
    log.log('steps=1, chairs=3.5')

    def broken():
        raise ValueError('no pair')
    log.validation_images(1, broken)
    log.log('steps=2, chairs=3.0')   # written to the log; events stopped after the warning
    log.close()
    assert 'warning: TensorBoard events' in capsys.readouterr().err
    reader = event_reader(tmp_path / 'tensorboard' / 'run')
    assert steps_and_values(reader, 'val/chairs') == [(1, 3.5)]


def test_no_tensorboard_switch_reaches_the_run_and_writes_no_events(tmp_path, monkeypatch):
    import engine.commands
    from common.errors import UserError
    calls = []

    def run_training(config, dataset_cfg, ctx, options):
        calls.append(options)
        raise UserError('stopped by the test')   # whatever the run would return
    monkeypatch.setattr(engine.commands, 'run_training', run_training)
    for argv, expected in (([], True), (['--no_tensorboard'], False)):
        assert main.main(['MaskFlownet_S.yaml'] + argv) == 2
        assert calls[-1].tensorboard is expected
    RunLog(str(tmp_path / 'run.log')).close()
    assert not (tmp_path / 'tensorboard').exists()


def test_tag_names_of_valid_logs_and_duplicates():
    runs = curves.read_runs([str(DATA / 'runlogs' / 'original_restarts.log')])
    assert 'val/kitti.12_2' in runs[0].series
    from tracking.logformat import line_scalars, parse_pairs
    assert line_scalars(parse_pairs('steps=5, kitti.2015:fl_all=0.25')) == (
        5, [('val/kitti.2015/fl_all', 0.25)])
