"""launch.py: training on several processes with the dist_* kvstores, and its faults.

Every job runs on 127.0.0.1 on a free port, under a time limit, and its processes are found
by a marker in their environment and killed at the end whatever happened.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import mxnet as mx
import pytest

import launch
from common.config import Config
from network.pipeline import Pipeline
from engine.trainer import FlowTrainer
from tests.cli import distributed_worker   # the equivalence job's worker, beside this file
from tests.helpers import REPO, SAMPLE, log_lines, write_small_chairs_config

pytestmark = pytest.mark.slow

JOB_TIMEOUT_S = 240


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def marked_processes(marker):
    """pid -> environment of this user's processes whose environment holds ``marker``."""
    found = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open('/proc/%s/environ' % entry, 'rb') as f:
                environ = f.read().split(b'\0')
        except OSError:
            continue
        if ('DIST_TEST_MARK=%s' % marker).encode() in environ:
            found[int(entry)] = dict(v.decode(errors='replace').split('=', 1)
                                     for v in environ if b'=' in v)
    return found


@pytest.fixture
def job(tmp_path, monkeypatch):
    """Run ``launch.py`` jobs in ``tmp_path`` (chairs sample roots); kill their leftovers."""
    roots = tmp_path / 'roots.yaml'
    roots.write_text('chairs: %s\n' % (SAMPLE / 'FlyingChairs_release'))
    write_small_chairs_config(tmp_path)
    marker = uuid.uuid4().hex
    env = dict(os.environ, MASKFLOWNET_DATASETS=str(roots), DIST_TEST_MARK=marker,
               OMP_NUM_THREADS='1')

    class Job:
        folder = tmp_path

        @staticmethod
        def start(*args, cwd=tmp_path):
            return subprocess.Popen([sys.executable, str(REPO / 'launch.py')] + [str(a) for a in args],
                                    cwd=cwd, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, start_new_session=True)

        @staticmethod
        def run(*args, timeout=JOB_TIMEOUT_S, cwd=tmp_path):
            process = Job.start(*args, cwd=cwd)
            out, err = process.communicate(timeout=timeout)
            return process.returncode, out, err

        @staticmethod
        def processes():
            return marked_processes(marker)
    yield Job
    for pid in marked_processes(marker):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def training(port, *extra):
    return ['-n', 2, '-s', 1, '--launcher', 'local', '--port', port, sys.executable,
            REPO / 'main.py', 'MaskFlownet_S.yaml', '--dataset_cfg', 'small.yaml', '--debug',
            '--kvstore', 'dist_sync', '--seed', 3, '--no_tensorboard'] + list(extra)


def test_two_workers_step_exactly_as_one_process_with_two_devices(job):
    """Data parallelism: workers with one device and batch 1 each == one process with two
    devices and batch 2 (same seed, network-side augmentation off); each worker draws its own
    augmentation."""
    out = job.folder / 'out'
    out.mkdir()
    roots = job.folder / 'roots.yaml'
    status, _, err = job.run('-n', 2, '-s', 1, '--launcher', 'local', '--port', free_port(),
                             sys.executable, Path(distributed_worker.__file__), roots, out, 5)
    assert status == 0, err
    assert not job.processes()

    mx.random.seed(5)
    pipe = Pipeline(Config({'network': {'class': 'MaskFlownet_S'}}), [mx.cpu(0), mx.cpu(1)])
    initial = distributed_worker.weights(pipe)
    trainer = FlowTrainer(pipe, distributed_worker.SCHEDULE)
    data = distributed_worker.small_chairs(roots, 2)
    assert data.batch_size == 2
    distributed_worker.train_steps(pipe, trainer, data, 5, trainer.workers)
    expected = distributed_worker.weights(pipe)
    with np.load(out / 'weights.npz') as got:
        assert sorted(got.files) == sorted(expected)
        moved = 0
        for name in expected:
            np.testing.assert_allclose(got[name], expected[name], rtol=1e-5, atol=1e-7, err_msg=name)
            moved += not np.array_equal(got[name], initial[name])
        assert moved > len(expected) // 2   # the steps did change the weights

    draws = [np.load(out / ('augmentation_%d.npz' % rank)) for rank in (0, 1)]
    for key in ('rotation', 'scale', 'shift_x'):
        assert not np.array_equal(draws[0][key], draws[1][key]), key


def test_local_launcher_trains_saves_once_per_step_and_resumes(job):
    port = free_port()
    status, out, err = job.run(*training(port))
    assert status == 0, err
    assert not job.processes()
    log, = (job.folder / 'logs' / 'debug').glob('*.log')
    run = log.stem
    weights_dir = job.folder / 'weights'
    # One checkpoint per save (worker 0's), in the original's format: .params and .states.
    assert sorted(p.name for p in weights_dir.iterdir()) == \
        ['%s_%d.%s' % (run, s, e) for s in (2, 4) for e in ('params', 'run.json', 'states')]
    saved = mx.nd.load(str(weights_dir / ('%s_4.params' % run)))
    assert 'conv1a.0.weight' in saved and len(saved) == 142
    lines = log_lines(log)
    assert lines[0].startswith('start=0, ') and lines[0].endswith('batch=2, workers=2, kvstore=dist_sync')
    assert sum(line.startswith('steps=4, epe=') for line in lines) == 1   # worker 0 alone logs
    assert 'worker 1 stopped at step 4' in out
    assert list(job.folder.glob('launch-*')) == []

    status, out, err = job.run(*training(port, '-c', run, '--max_steps', 1))
    assert status == 0, err
    assert 'run %s stopped at step 5' % run in out
    lines = log_lines(log)
    assert any(line.startswith('start=4, ') for line in lines)
    assert sorted(p.name for p in weights_dir.glob('*.params')) == \
        ['%s_%d.params' % (run, s) for s in (2, 4, 5)]


def test_a_killed_worker_stops_the_job_with_one_line(job):
    process = job.start(*training(free_port(), '--max_steps', 40))
    try:
        deadline = time.monotonic() + JOB_TIMEOUT_S
        victim = None
        while victim is None and time.monotonic() < deadline:
            time.sleep(0.2)
            if list((job.folder / 'weights').glob('*_2.params')):
                victim = next((pid for pid, env in job.processes().items()
                               if env.get('DMLC_ROLE') == 'worker' and env.get('DMLC_TASK_ID') == '1'
                               and 'main.py' in Path('/proc/%d/cmdline' % pid).read_text()), None)
        assert victim is not None, 'the job saved no checkpoint in time'
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()
        _, err = process.communicate(timeout=60)
        took = time.monotonic() - killed_at
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 128 + signal.SIGKILL
    assert took < 20, took
    assert not job.processes()
    lines = [line for line in err.splitlines() if line.startswith('error: ')]
    newest = max(job.folder.glob('weights/*.params'), key=lambda p: int(p.stem.rsplit('_', 1)[1]))
    run = newest.stem.rsplit('_', 1)[0]
    assert lines == ['error: worker task 1 (pid %d) was killed by SIGKILL; stopped the whole job; '
                     'newest checkpoint: weights/%s (resume with -c %s)' % (victim, newest.name, run)]


def test_a_port_in_use_and_bad_launches_are_one_line(job, capsys):
    with socket.socket() as busy:
        busy.bind(('127.0.0.1', 0))
        busy.listen()
        port = busy.getsockname()[1]
        status, out, err = job.run(*training(port), timeout=30)
    assert status == 2 and err == 'error: --port %d: already in use on this machine (pick ' \
        'another, or stop what listens there)\n' % port, err
    assert not job.processes()
    assert launch.main(['-n', '2', '--launcher', 'ssh', 'true']) == 2
    assert 'error: --launcher ssh: name the machines with -H HOSTFILE' in capsys.readouterr().err


def test_a_two_worker_job_resumed_is_the_uninterrupted_job(job):
    """dist_sync: 4 steps straight against 2 + resume + 2, both with two workers: the same
    weights and optimizer state, bit for bit, and the same log values; resumed with one worker,
    the data goes on and one line says what is not exact. Not --debug: the chairs batch of 8
    stays 8 whatever the number of workers."""
    def command(workers, *extra):
        return ['-n', workers, '-s', 1, '--launcher', 'local', '--port', free_port(),
                sys.executable, REPO / 'main.py', 'MaskFlownet_S.yaml', '--dataset_cfg',
                'tiny.yaml', '--kvstore', 'dist_sync', '--seed', 3, '--no_tensorboard'] + list(extra)

    straight, parts = job.folder / 'straight', job.folder / 'parts'
    for folder in (straight, parts):
        folder.mkdir()
        (folder / 'tiny.yaml').write_text('dataset: chairs\norig_shape: [128, 192]\n'
                                          'target_shape: [64, 128]\n')
    for folder, extra in ((straight, ['--max_steps', 4]), (parts, ['--max_steps', 2])):
        status, _, err = job.run(*command(2, *extra), cwd=folder)
        assert status == 0, err
    run = next((parts / 'logs').glob('*.log')).stem
    status, _, err = job.run(*command(2, '-c', run, '--max_steps', 2), cwd=parts)
    assert status == 0, err
    assert 'note: ' not in err
    whole = next((straight / 'weights').glob('*_4.params'))
    resumed = parts / 'weights' / ('%s_4.params' % run)
    assert whole.read_bytes() == resumed.read_bytes()
    assert whole.with_suffix('.states').read_bytes() == resumed.with_suffix('.states').read_bytes()

    def values(folder):
        lines = log_lines(next((folder / 'logs').glob('*.log')))
        return [re.sub(r', total_time=[0-9.]+', '', line) for line in lines
                if line.startswith('steps=')]
    assert values(parts) == values(straight)

    status, _, err = job.run(*command(1, '-c', run, '--max_steps', 1), cwd=parts)
    assert status == 0, err
    notes = [line for line in err.splitlines() if line.startswith('note: ')]
    assert notes == ['note: the run was trained by 2 worker(s), now 1: the data goes on exactly '
                     '(no sample twice, none skipped), the augmentation draws differ'], err


def test_workers_without_a_seed_share_worker_0s_drawn_seed(job):
    """Without --seed every worker draws one; they must read one stream: the job logs worker
    0's seed, and the same job with --seed that seed gives the same weights, bit for bit."""
    def command(*extra):
        return ['-n', 2, '-s', 1, '--launcher', 'local', '--port', free_port(), sys.executable,
                REPO / 'main.py', 'MaskFlownet_S.yaml', '--dataset_cfg', 'tiny.yaml',
                '--kvstore', 'dist_sync', '--no_tensorboard', '--max_steps', 2] + list(extra)
    drawn, given = job.folder / 'drawn', job.folder / 'given'
    for folder in (drawn, given):
        folder.mkdir()
        (folder / 'tiny.yaml').write_text('dataset: chairs\norig_shape: [128, 192]\n'
                                          'target_shape: [64, 128]\n')
    status, _, err = job.run(*command(), cwd=drawn)
    assert status == 0, err
    log = next((drawn / 'logs').glob('*.log'))
    seed = int(re.search(r'seed=(\d+)', log.read_text()).group(1))
    status, _, err = job.run(*command('--seed', seed), cwd=given)
    assert status == 0, err
    assert (next((drawn / 'weights').glob('*_2.params')).read_bytes()
            == next((given / 'weights').glob('*_2.params')).read_bytes())
