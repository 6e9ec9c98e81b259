"""A training run is safe to start, stop and run twice: one process per run, its folders
proven writable before the first step, no log for a run that never started, a ``stopped=``
line for one that stopped, and out-of-memory as one line."""
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import main as main_cli
from common.errors import UserError
from common.files import OwnerLock

REPO = Path(__file__).resolve().parent.parent.parent
SAMPLE = REPO / 'sample_data'


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A working directory with a copy of the chairs samples as its only dataset, and a
    small.yaml of 128 x 192 crops."""
    chairs = tmp_path / 'chairs'
    shutil.copytree(SAMPLE / 'FlyingChairs_release', chairs)
    roots = tmp_path / 'datasets.yaml'
    roots.write_text('chairs: %s\n' % chairs)
    monkeypatch.setenv('MASKFLOWNET_DATASETS', str(roots))
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'small.yaml').write_text('dataset: chairs\norig_shape: [128, 192]\n'
                                         'target_shape: [128, 192]\n')
    return tmp_path


def train(*extra):
    return main_cli.main(['MaskFlownet_S.yaml', '--dataset_cfg', 'small.yaml', '--debug',
                          '--no_tensorboard', '--seed', '1'] + list(extra))


def error_line(capsys):
    err = capsys.readouterr().err
    assert err.startswith('error: ') and err.count('\n') == 1, err
    return err


def logs(workdir):
    return sorted((workdir / 'logs' / 'debug').glob('*.log'))


# --- the lock ---------------------------------------------------------------------------------

HOLD = '''
import sys, time
sys.path.insert(0, %r)
from common.files import OwnerLock
OwnerLock(sys.argv[1], 'run X').acquire()
print('held', flush=True)
time.sleep(60)
''' % str(REPO)


def test_a_lock_is_refused_while_its_owner_lives_and_taken_over_once_it_is_killed(tmp_path):
    path = tmp_path / 'run.lock'
    owner = subprocess.Popen([sys.executable, '-c', HOLD, str(path)], stdout=subprocess.PIPE,
                             text=True)
    try:
        assert owner.stdout.readline() == 'held\n'
        with pytest.raises(UserError) as refused:
            OwnerLock(path, 'run abcDec07-1200').acquire()
        assert str(refused.value) == ('run abcDec07-1200 is in use by another process (pid %d, '
                                      'lock file %s); wait for it to end or stop it'
                                      % (owner.pid, path))
    finally:
        owner.send_signal(signal.SIGKILL)   # like a power cut: no clean-up of its lock file
        owner.wait(timeout=30)
    assert path.exists()
    with OwnerLock(path, 'run abcDec07-1200') as lock:
        assert path.read_text().split()[0] == str(os.getpid())
        with pytest.raises(UserError, match='pid %d' % os.getpid()):
            OwnerLock(path, 'run abcDec07-1200').acquire()   # a second holder, same process
    assert not path.exists()


def test_a_second_process_resuming_a_run_in_use_is_refused_and_changes_nothing(workdir, capsys):
    assert train('--max_steps', '2') == 0
    run_id = re.search(r'run (\S+) stopped at step 2', capsys.readouterr().out).group(1)
    before = {p.name: p.read_bytes() for p in list((workdir / 'weights').iterdir()) + logs(workdir)}
    from engine.runs import own_run
    with own_run(run_id, 'weights'):   # the run's writer, as another process would hold it
        assert train('-c', run_id, '--max_steps', '2') == 2
        err = error_line(capsys)
    assert err == ('error: run %s is in use by another process (pid %d, lock file '
                   'weights/%s.lock); wait for it to end or stop it\n' % (run_id, os.getpid(), run_id))
    after = {p.name: p.read_bytes() for p in list((workdir / 'weights').iterdir()) + logs(workdir)}
    assert after == before
    assert train('-c', run_id, '--max_steps', '2') == 0   # once the owner is gone
    assert not list((workdir / 'weights').glob('*.lock'))


# --- folders, the held log and the stopped= line -------------------------------------------

def test_an_unwritable_weights_folder_is_found_before_the_first_step(workdir, capsys):
    (workdir / 'weights').write_text('a file where the checkpoints would go')
    assert train('--max_steps', '2') == 2
    err = error_line(capsys)
    assert err.startswith('error: weights: cannot write there')
    assert 'steps=1' not in capsys.readouterr().out and not (workdir / 'logs').exists()


def test_an_unwritable_log_folder_is_found_before_the_first_step(workdir, capsys):
    (workdir / 'logs').mkdir()
    (workdir / 'logs' / 'debug').write_text('a file where the logs would go')
    assert train('--max_steps', '2') == 2
    assert error_line(capsys).startswith('error: %s: cannot write there' % (workdir / 'logs' / 'debug'))
    assert not list((workdir / 'weights').glob('*.params'))


def test_a_run_that_fails_before_its_first_step_leaves_no_log(workdir, capsys):
    (workdir / 'chairs' / 'data' / '00001_flow.flo').write_bytes(b'PIEH')   # damaged label
    assert train('--max_steps', '2') == 2
    assert '00001_flow.flo' in error_line(capsys)
    assert logs(workdir) == [] and not list((workdir / 'weights').glob('*'))


def test_a_resume_that_fails_before_its_first_step_leaves_the_log_as_it_was(workdir, capsys):
    assert train('--max_steps', '2') == 0
    run_id = re.search(r'run (\S+) stopped', capsys.readouterr().out).group(1)
    log = logs(workdir)[0]
    before = log.read_bytes()
    (workdir / 'chairs' / 'data' / '00001_flow.flo').write_bytes(b'PIEH')
    assert train('-c', run_id, '--max_steps', '2') == 2
    error_line(capsys)
    assert log.read_bytes() == before


def test_a_run_stopped_after_its_start_says_why_in_the_last_log_line(workdir, capsys, monkeypatch):
    import engine.train
    validate = engine.train.validate_sets
    calls = []

    def fail_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise UserError('validation data went away')
        return validate(*args, **kwargs)
    monkeypatch.setattr(engine.train, 'validate_sets', fail_second)
    assert train('--max_steps', '4') == 2
    assert error_line(capsys) == 'error: validation data went away\n'
    last = logs(workdir)[0].read_text().splitlines()[-1]
    assert re.fullmatch(r'\[[^]]+\] stopped=validation data went away', last), last


def test_an_interrupted_run_says_so_in_the_last_log_line(workdir, capsys, monkeypatch):
    from engine import trainer
    step = trainer.FlowTrainer.train_batch
    calls = []

    def interrupt_third(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return step(self, *args, **kwargs)
    monkeypatch.setattr(trainer.FlowTrainer, 'train_batch', interrupt_third)
    assert train('--max_steps', '4') == 130
    assert logs(workdir)[0].read_text().splitlines()[-1].endswith(
        '] stopped=interrupted (Ctrl-C or a termination signal)')
    assert [p.name[-9:] for p in sorted((workdir / 'weights').glob('*.params'))] == ['_2.params']


def test_out_of_memory_in_a_step_is_one_line_logged_and_keeps_the_newest_checkpoint(
        workdir, capsys, monkeypatch):
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
    assert train('--max_steps', '4') == 2
    message = ('out of memory while training step 3 (a batch of 1 at 192x128); reduce the '
               'batch or the crop (target_shape) in the dataset config')
    assert error_line(capsys) == 'error: %s\n' % message
    assert logs(workdir)[0].read_text().splitlines()[-1].endswith('] stopped=' + message)
    newest = sorted((workdir / 'weights').glob('*.params'))
    assert [p.name[-9:] for p in newest] == ['_2.params']


def test_the_lock_file_goes_with_the_run(workdir, capsys):
    assert train('--max_steps', '2') == 0
    assert sorted(p.name.partition('.')[2] for p in (workdir / 'weights').iterdir()) == [
        'params', 'run.json', 'states']


# --- --predict: a flow and its mask together ----------------------------------------------------

class _FakePipe:
    """What submissions need of a pipeline: devices and predict()."""
    ctx = [None]

    def predict(self, img1s, img2s, batch_size=1, resize=None):
        for img in img1s:
            yield np.zeros(img.shape[:2] + (2,), np.float32), np.ones(img.shape[:2] + (1,)), None


def test_an_interrupt_between_a_flow_and_its_mask_leaves_neither(tmp_path, monkeypatch):
    from engine import submission
    from reader import flowio, sintel
    samples = sintel.list_samples(SAMPLE / 'MPI-Sintel-complete', 'training')[:1]
    flow_path = tmp_path / 'out' / 'frame.flo'

    def interrupted(path, image):
        raise KeyboardInterrupt
    monkeypatch.setattr(flowio, 'write_image', interrupted)
    with pytest.raises(KeyboardInterrupt):
        submission._predict_to_files(_FakePipe(), [(samples[0], str(flow_path))],
                                     flowio.write_flo, 1, None, True, 'test')
    assert not flow_path.parent.exists() or list(flow_path.parent.iterdir()) == []


def test_no_progress_bar_when_standard_error_is_not_a_terminal(capsys):
    from engine.evaluate import stream_runs
    from reader import sintel
    samples = sintel.list_samples(SAMPLE / 'MPI-Sintel-complete', 'training')
    seen = []
    stream_runs(_FakePipe(), samples, 1, lambda part, run: seen.extend(part), 'sintel')
    assert len(seen) == len(samples) and capsys.readouterr().err == ''
