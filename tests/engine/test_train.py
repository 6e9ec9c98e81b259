"""engine/train.py: training runs through the library (run_training): log lines, checkpoints,
an exact continuation, and the TensorBoard events the run writes."""
import math
import os
import re
from pathlib import Path

import cv2
import mxnet as mx
import pytest

import main as main_cli
import plot_logs
from common.errors import UserError
from network.pipeline import Pipeline
from tracking.logformat import read_log
from tracking.runlog import events_folder
from tests.helpers import (SAMPLE, event_reader, log_lines, steps_and_values,
                           write_small_chairs_config)

pytestmark = pytest.mark.slow


def test_two_steps_then_a_resume_through_the_library(tmp_path, monkeypatch):
    """run_training, called directly: log lines, checkpoints, then an exact continuation; the
    graphs' memory is released before and after each validation."""
    from common.config import load_config
    from engine.train import RunOptions, run_training
    released = []   # which graph held a plan (and its memory) when released
    release = Pipeline.release_graph_memory
    monkeypatch.setattr(Pipeline, 'release_graph_memory', lambda pipe: (
        released.append((pipe.network._cached_op is not None,
                         pipe.inference_network._cached_op is not None)), release(pipe)))
    write_small_chairs_config(tmp_path)
    roots = tmp_path / 'roots.yaml'
    roots.write_text('chairs: %s\n' % (SAMPLE / 'FlyingChairs_release'))
    options = dict(roots_file=roots, weights_dir=str(tmp_path / 'w'), logs_dir=str(tmp_path / 'l'),
                   debug=True, seed=1)
    config, small = load_config('MaskFlownet_S.yaml'), load_config(tmp_path / 'small.yaml')
    first = run_training(config, small, [mx.cpu()],
                         RunOptions(max_steps=2, log_args={'seed': 1}, **options))
    run_id = first.run_id
    assert re.fullmatch(r'[0-9a-f]{3}[A-Z][a-z]{2}\d\d-\d{4}', run_id) and first.steps == 2
    log = tmp_path / 'l' / 'debug' / ('%s.log' % run_id)
    lines = log_lines(log)
    assert lines[0].startswith('start=0, train=1, val=1, host=') and lines[0].endswith('batch=1')
    assert lines[1] == 'seed=1'
    assert re.search(r'^steps=1, epe=[0-9.]+, total_time=[0-9.]+$', '\n'.join(lines), re.M)
    assert re.search(r'^steps=2, chairs=[0-9.]+$', '\n'.join(lines), re.M)
    assert first.newest == str(tmp_path / 'w' / ('%s_2.params' % run_id))
    # Validations at steps 1 and 2: the training graph lets go of its memory before, the
    # inference graph after.
    assert released == [(True, False), (False, True)] * 2

    second = run_training(config, small, [mx.cpu()],
                          RunOptions(checkpoint=run_id, max_steps=2, **options))
    assert (second.run_id, second.steps, second.started_from) == (run_id, 4, first.newest)
    assert 'start=2, train=1, val=1' in '\n'.join(log_lines(log))
    assert sorted(p.name for p in (tmp_path / 'w').glob('*.params')) == \
        ['%s_%d.params' % (run_id, s) for s in (2, 4)]


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
    # The pooled metrics; not epe_s40+: no pixel of the Chairs pair moves 40 px, so its value
    # is NaN, which the log holds and events leave out.
    assert re.search(r'^steps=2, chairs:epe_all=.*, chairs:epe_s40\+=nan$',
                     '\n'.join(log_lines(log)), re.M)
    pooled = ['val/chairs/' + m for m in ('epe_all', 'above1px', 'above3px', 'above5px',
                                         'epe_s0-10', 'epe_s10-40')]
    assert set(reader.Tags()['scalars']) == {'train/epe', 'train/seconds_per_step', 'train/lr',
                                             'val/chairs', *pooled}
    # The values the text log holds, read with a pattern of their own.
    text = log.read_text()
    epe = [(int(s), float(v)) for s, v in re.findall(r'steps=(\d+), epe=([^,]+),', text)]
    chairs = [(int(s), float(v)) for s, v in re.findall(r'steps=(\d+), chairs=(\S+)', text)]
    assert [s for s, _ in epe] == [1, 2] and [s for s, _ in chairs] == [1, 2]
    assert steps_and_values(reader, 'train/epe') == [(s, pytest.approx(v, rel=1e-6))
                                                     for s, v in epe]
    assert steps_and_values(reader, 'val/chairs') == [(s, pytest.approx(v, rel=1e-6))
                                                      for s, v in chairs]
    # The pooled metrics: a line of their own after the original's validation line.
    above3 = [(int(s), float(v)) for s, v in re.findall(
        r'steps=(\d+), chairs=\S+\n\[[^]]+\] steps=\1, chairs:epe_all=[^,]+, '
        r'chairs:above1px=[^,]+, chairs:above3px=([^,]+), ', text)]
    assert [s for s, _ in above3] == [1, 2] and all(0 <= v <= 1 for _, v in above3)
    assert steps_and_values(reader, 'val/chairs/above3px') == [
        (s, pytest.approx(v, rel=1e-6)) for s, v in above3]
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
    assert {tag for tag, points in parsed.series.items()
            if any(math.isfinite(p[1]) for p in points)} == set(reader.Tags()['scalars']) - {'train/lr'}
    assert [(s, v) for s, v, _ in parsed.series['train/epe']] == epe
    out = tmp_path / 'curves.png'
    assert plot_logs.main([str(out), str(log)]) == 0 and out.stat().st_size > 1000
    assert 'warning' not in capsys.readouterr().err


# --- safe runs: one process per run, folders, the held log, stopped= -------------------------

def train_cli(*extra):
    return main_cli.main(['MaskFlownet_S.yaml', '--dataset_cfg', 'small.yaml', '--debug',
                          '--no_tensorboard', '--seed', '1'] + list(extra))


def error_line(capsys):
    err = capsys.readouterr().err
    assert err.startswith('error: ') and err.count('\n') == 1, err
    return err


def logs(chairs_copy):
    return sorted((chairs_copy / 'logs' / 'debug').glob('*.log'))


def test_a_second_process_resuming_a_run_in_use_is_refused_and_changes_nothing(chairs_copy, capsys):
    assert train_cli('--max_steps', '2') == 0
    run_id = re.search(r'run (\S+) stopped at step 2', capsys.readouterr().out).group(1)
    before = {p.name: p.read_bytes() for p in list((chairs_copy / 'weights').iterdir()) + logs(chairs_copy)}
    from engine.runs import own_run
    with own_run(run_id, 'weights'):   # the run's writer, as another process would hold it
        assert train_cli('-c', run_id, '--max_steps', '2') == 2
        err = error_line(capsys)
    assert err == ('error: run %s is in use by another process (pid %d, lock file '
                   'weights/%s.lock); wait for it to end or stop it\n' % (run_id, os.getpid(), run_id))
    after = {p.name: p.read_bytes() for p in list((chairs_copy / 'weights').iterdir()) + logs(chairs_copy)}
    assert after == before
    assert train_cli('-c', run_id, '--max_steps', '2') == 0   # once the owner is gone
    assert not list((chairs_copy / 'weights').glob('*.lock'))


# --- folders, the held log and the stopped= line -------------------------------------------

def test_an_unwritable_weights_folder_is_found_before_the_first_step(chairs_copy, capsys):
    (chairs_copy / 'weights').write_text('a file where the checkpoints would go')
    assert train_cli('--max_steps', '2') == 2
    err = error_line(capsys)
    assert err.startswith('error: weights: cannot write there')
    assert 'steps=1' not in capsys.readouterr().out and not (chairs_copy / 'logs').exists()


def test_an_unwritable_log_folder_is_found_before_the_first_step(chairs_copy, capsys):
    (chairs_copy / 'logs').mkdir()
    (chairs_copy / 'logs' / 'debug').write_text('a file where the logs would go')
    assert train_cli('--max_steps', '2') == 2
    assert error_line(capsys).startswith('error: %s: cannot write there' % (chairs_copy / 'logs' / 'debug'))
    assert not list((chairs_copy / 'weights').glob('*.params'))


def test_a_run_that_fails_before_its_first_step_leaves_no_log(chairs_copy, capsys):
    (chairs_copy / 'chairs' / 'data' / '00001_flow.flo').write_bytes(b'PIEH')   # damaged label
    assert train_cli('--max_steps', '2') == 2
    assert '00001_flow.flo' in error_line(capsys)
    assert logs(chairs_copy) == [] and not list((chairs_copy / 'weights').glob('*'))


def test_a_resume_that_fails_before_its_first_step_leaves_the_log_as_it_was(chairs_copy, capsys):
    assert train_cli('--max_steps', '2') == 0
    run_id = re.search(r'run (\S+) stopped', capsys.readouterr().out).group(1)
    log = logs(chairs_copy)[0]
    before = log.read_bytes()
    (chairs_copy / 'chairs' / 'data' / '00001_flow.flo').write_bytes(b'PIEH')
    assert train_cli('-c', run_id, '--max_steps', '2') == 2
    error_line(capsys)
    assert log.read_bytes() == before


def test_a_run_stopped_after_its_start_says_why_in_the_last_log_line(chairs_copy, capsys, monkeypatch):
    import engine.train
    validate = engine.train.validate_sets
    calls = []

    def fail_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise UserError('validation data went away')
        return validate(*args, **kwargs)
    monkeypatch.setattr(engine.train, 'validate_sets', fail_second)
    assert train_cli('--max_steps', '4') == 2
    assert error_line(capsys) == 'error: validation data went away\n'
    last = logs(chairs_copy)[0].read_text().splitlines()[-1]
    assert re.fullmatch(r'\[[^]]+\] stopped=validation data went away', last), last


def test_an_interrupted_run_says_so_in_the_last_log_line(chairs_copy, capsys, monkeypatch):
    from engine import trainer
    step = trainer.FlowTrainer.train_batch
    calls = []

    def interrupt_third(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return step(self, *args, **kwargs)
    monkeypatch.setattr(trainer.FlowTrainer, 'train_batch', interrupt_third)
    assert train_cli('--max_steps', '4') == 130
    assert logs(chairs_copy)[0].read_text().splitlines()[-1].endswith(
        '] stopped=interrupted (Ctrl-C)')
    assert [p.name[-9:] for p in sorted((chairs_copy / 'weights').glob('*.params'))] == ['_2.params']


def test_out_of_memory_in_a_step_is_one_line_logged_and_keeps_the_newest_checkpoint(
        chairs_copy, capsys, monkeypatch):
    import mxnet as mx
    from engine import trainer
    step = trainer.FlowTrainer.train_batch
    calls = []

    def exhaust_third(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:   # as MXNet reports it where the step waits for its result
            raise mx.base.MXNetError('Traceback (most recent call last):\n  File '
                                     '"../src/storage/./cpu_device_storage.h", line 74\n'
                                     'MXNetError: Failed to allocate CPU Memory')
        return step(self, *args, **kwargs)
    monkeypatch.setattr(trainer.FlowTrainer, 'train_batch', exhaust_third)
    assert train_cli('--max_steps', '4') == 2
    message = ('out of memory while training step 3 (a batch of 1 at 192x128); reduce the '
               'batch or the crop (target_shape) in the dataset config')
    assert error_line(capsys) == 'error: %s\n' % message
    assert logs(chairs_copy)[0].read_text().splitlines()[-1].endswith('] stopped=' + message)
    newest = sorted((chairs_copy / 'weights').glob('*.params'))
    assert [p.name[-9:] for p in newest] == ['_2.params']


def test_the_lock_file_goes_with_the_run(chairs_copy, capsys):
    assert train_cli('--max_steps', '2') == 0
    assert sorted(p.name.partition('.')[2] for p in (chairs_copy / 'weights').iterdir()) == [
        'params', 'run.json', 'states']


def test_a_resume_planned_while_the_run_went_on_is_refused_and_overwrites_nothing(chairs_copy):
    """Another process saved the run again between this one's planning (-c RUN: RUN_2 the
    newest) and its taking the run's lock: resuming from RUN_2 would overwrite RUN_4."""
    from common.config import load_config
    from engine.train import RunOptions, prepare_run, run
    assert train_cli('--max_steps', '2') == 0
    run_id = logs(chairs_copy)[0].stem
    options = RunOptions(checkpoint=run_id, debug=True, max_steps=2, tensorboard=False)
    prepared = prepare_run(load_config('MaskFlownet_S.yaml', 'network'),
                           load_config('small.yaml', 'dataset'), [mx.cpu()], options)
    weights = chairs_copy / 'weights'
    for suffix in ('.params', '.states', '.run.json'):   # the other process's save at step 4
        (weights / ('%s_4%s' % (run_id, suffix))).write_bytes(
            (weights / ('%s_2%s' % (run_id, suffix))).read_bytes())
    before = {p.name: p.read_bytes() for p in weights.iterdir()}
    with pytest.raises(UserError, match='run %s went on while this process started' % run_id):
        run(prepared)
    assert {p.name: p.read_bytes() for p in weights.iterdir()} == before


def test_a_truncated_validation_file_is_found_before_the_first_step(chairs_copy, capsys):
    """Validation runs after step 1 and then every validation_steps: a resumed run met a
    damaged validation file thousands of steps in."""
    flo = chairs_copy / 'chairs' / 'data' / '00002_flow.flo'   # the validation sample's
    flo.write_bytes(flo.read_bytes()[:-8])
    assert train_cli('--max_steps', '2') == 2
    err = error_line(capsys)
    assert '00002_flow.flo: .flo payload truncated' in err
    assert 'steps=1' not in capsys.readouterr().out and logs(chairs_copy) == []
