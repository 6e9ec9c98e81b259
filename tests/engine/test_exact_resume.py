"""A resumed run continues as if it had never stopped: N steps straight and N/2 + resume + N/2
give bit-identical weights, optimizer state and log values (engine/runstate.py,
reader/loader.py's keyed stream, engine/train.py's per-step augmentation seeds)."""
import dataclasses
import json
import pickle
import re
import shutil
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest

from common.config import load_config
from engine import runstate
from engine.train import RunOptions, prepare_run, run

REPO = Path(__file__).resolve().parent.parent.parent
SAMPLE = REPO / 'sample_data'
pytestmark = pytest.mark.slow


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    chairs = tmp_path / 'chairs'
    shutil.copytree(SAMPLE / 'FlyingChairs_release', chairs)
    (tmp_path / 'roots.yaml').write_text('chairs: %s\n' % chairs)
    (tmp_path / 'small.yaml').write_text('dataset: chairs\norig_shape: [128, 192]\n'
                                         'target_shape: [64, 128]\n')
    monkeypatch.chdir(tmp_path)
    return tmp_path


def train(folder, steps, checkpoint=None, seed=7, validation_steps=3, checkpoint_steps=2,
          network='MaskFlownet_S.yaml'):
    """``steps`` steps in ``folder`` (weights/ and logs/ there), from ``checkpoint``; returns
    the RunResult."""
    options = RunOptions(checkpoint=checkpoint, debug=True, seed=seed, tensorboard=False,
                         roots_file=str(folder.parent / 'roots.yaml'),
                         weights_dir=str(folder / 'weights'), logs_dir=str(folder / 'logs'))
    prepared = prepare_run(load_config(network, 'network'),
                           load_config(folder.parent / 'small.yaml', 'dataset'), [mx.cpu()], options)
    prepared.loop = dataclasses.replace(prepared.loop, validation_steps=validation_steps,
                                        checkpoint_steps=checkpoint_steps, max_steps=steps)
    return run(prepared)


def logged(folder, run_id):
    """The run log's steps= lines, without the step times (not part of the promise)."""
    text = (folder / 'logs' / 'debug' / ('%s.log' % run_id)).read_text()
    return [re.sub(r', total_time=[0-9.]+', '', line.partition('] ')[2])
            for line in text.splitlines() if '] steps=' in line]


def optimizer_state(path):
    """The Adam moments and update counts of a .states file (our own file: unpickled here)."""
    states, optimizer = pickle.loads(Path(path).read_bytes())
    moments = {index: [s.asnumpy() for s in state] for index, state in states.items()}
    return moments, dict(optimizer._index_update_count), optimizer.num_update


def assert_same_checkpoint(a, b):
    assert Path(a).read_bytes() == Path(b).read_bytes()   # the .params, bit for bit
    (ma, ca, na), (mb, cb, nb) = (optimizer_state(p[:-len('.params')] + '.states') for p in (a, b))
    assert (ca, na) == (cb, nb) and ma.keys() == mb.keys()
    for index in ma:
        for x, y in zip(ma[index], mb[index]):
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize('first', [2, 3], ids=['after a checkpoint', 'after a validation'])
def test_a_run_resumed_at_any_point_is_the_uninterrupted_run(workdir, first):
    straight, parts = workdir / 'straight', workdir / 'parts'
    whole = train(straight, 6)
    half = train(parts, first)
    rest = train(parts, 6 - first, checkpoint=half.run_id)
    assert rest.run_id == half.run_id and rest.steps == whole.steps == 6
    assert_same_checkpoint(whole.newest, rest.newest)
    assert logged(parts, rest.run_id) == logged(straight, whole.run_id)
    assert len(logged(straight, whole.run_id)) == 6 + 3   # 6 training lines, validations at 1, 3, 6
    saved = json.loads(Path(runstate.state_path(rest.newest)).read_text())
    assert saved == json.loads(Path(runstate.state_path(whole.newest)).read_text()) | {
        'step_time': saved['step_time']}   # the step times are the one difference


def test_a_branch_from_an_older_checkpoint_continues_that_checkpoints_history(workdir, capsys):
    straight, parts = workdir / 'straight', workdir / 'parts'
    whole = train(straight, 6, checkpoint_steps=2)
    first = train(parts, 6, checkpoint_steps=2)       # checkpoints at 2, 4, 6
    branch = train(parts, 2, checkpoint='%s:4' % first.run_id)
    assert branch.run_id != first.run_id and branch.steps == 6
    assert_same_checkpoint(whole.newest, branch.newest)
    assert 'not exact' not in capsys.readouterr().err


def test_max_steps_stops_resume_exactly_and_a_drawn_seed_is_recorded(workdir):
    straight, parts = workdir / 'straight', workdir / 'parts'
    first = train(parts, 1, seed=None)
    log = (parts / 'logs' / 'debug' / ('%s.log' % first.run_id)).read_text()
    seed = int(re.search(r"seed=(\d+)", log).group(1))
    assert json.loads(Path(runstate.state_path(first.newest)).read_text())['seed'] == seed
    for _ in range(2):
        resumed = train(parts, 1, checkpoint=first.run_id, seed=None)
    whole = train(straight, 3, seed=seed)   # the same seed again: the same run
    assert resumed.steps == 3
    assert_same_checkpoint(whole.newest, resumed.newest)


def test_a_checkpoint_without_run_state_resumes_as_before_with_one_line(workdir, capsys):
    parts = workdir / 'parts'
    first = train(parts, 2)
    Path(runstate.state_path(first.newest)).unlink()   # as the original's or an older one
    capsys.readouterr()
    second = train(parts, 2, checkpoint=first.run_id)
    assert second.steps == 4 and second.run_id == first.run_id
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and err.startswith('note: %s_2.params has no run state'
                                                  % first.run_id)
    assert 'the resume is not exact' in err


def test_the_run_state_is_json_and_a_damaged_one_is_one_line(workdir):
    parts = workdir / 'parts'
    first = train(parts, 2)
    path = Path(runstate.state_path(first.newest))
    state = json.loads(path.read_text())
    assert set(state) == {'seed', 'steps', 'train_epe', 'step_time', 'data', 'workers', 'format'}
    assert state['steps'] == 2 and state['data']['slots'][0]['samples'] == 1
    path.write_text('{"format": 1, "seed": "7"}')
    from common.errors import UserError
    with pytest.raises(UserError, match=r'run.json: not a run state of this project'):
        train(parts, 2, checkpoint=first.run_id)
