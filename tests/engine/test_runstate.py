"""engine/runstate.py: a resumed run continues as if it had never stopped: N steps straight and
N/2 + resume + N/2 give bit-identical weights, optimizer state and log values (with
reader/loader.py's keyed stream and engine/train.py's per-step augmentation seeds); the run
state file beside each checkpoint."""
import dataclasses
import json
import pickle
import re
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest

from common.config import load_config
from engine import runstate
from engine.runs import parse_checkpoint_name, prune_checkpoints
from engine.train import RunOptions, prepare_run, run
from reader.mixes import TrainingData



@pytest.fixture
def workdir(chairs_copy):
    """conftest's chairs_copy, with tiny.yaml: 64 x 128 network inputs for quick steps."""
    (chairs_copy / 'tiny.yaml').write_text('dataset: chairs\norig_shape: [128, 192]\n'
                                           'target_shape: [64, 128]\n')
    return chairs_copy


def train(folder, steps, checkpoint=None, seed=7, validation_steps=3, checkpoint_steps=2,
          network='MaskFlownet_S.yaml'):
    """``steps`` steps in ``folder`` (weights/ and logs/ there), from ``checkpoint``; returns
    the RunResult."""
    options = RunOptions(checkpoint=checkpoint, debug=True, seed=seed, tensorboard=False,
                         roots_file=str(folder.parent / 'roots.yaml'),
                         weights_dir=str(folder / 'weights'), logs_dir=str(folder / 'logs'))
    prepared = prepare_run(load_config(network, 'network'),
                           load_config(folder.parent / 'tiny.yaml', 'dataset'), [mx.cpu()], options)
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
@pytest.mark.slow
def test_a_run_resumed_at_any_point_is_the_uninterrupted_run(workdir, first):
    straight, parts = workdir / 'straight', workdir / 'parts'
    whole = train(straight, 6)
    half = train(parts, first)
    rest = train(parts, 6 - first, checkpoint=half.run_id)
    assert rest.run_id == half.run_id and rest.steps == whole.steps == 6
    assert_same_checkpoint(whole.newest, rest.newest)
    assert logged(parts, rest.run_id) == logged(straight, whole.run_id)
    # 6 training lines; validations at 1, 3, 6, two lines each (the EPE, the pooled metrics)
    assert len(logged(straight, whole.run_id)) == 6 + 3 * 2
    saved = json.loads(Path(runstate.state_path(rest.newest)).read_text())
    assert saved == json.loads(Path(runstate.state_path(whole.newest)).read_text()) | {
        'step_time': saved['step_time']}   # the step times are the one difference


@pytest.mark.slow
def test_a_branch_from_an_older_checkpoint_continues_that_checkpoints_history(workdir, capsys):
    straight, parts = workdir / 'straight', workdir / 'parts'
    whole = train(straight, 6, checkpoint_steps=2)
    first = train(parts, 6, checkpoint_steps=2)       # checkpoints at 2, 4, 6
    branch = train(parts, 2, checkpoint='%s:4' % first.run_id)
    assert branch.run_id != first.run_id and branch.steps == 6
    assert_same_checkpoint(whole.newest, branch.newest)
    assert 'not exact' not in capsys.readouterr().err


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_the_run_state_is_json_and_a_damaged_one_is_one_line(workdir):
    parts = workdir / 'parts'
    first = train(parts, 2)
    path = Path(runstate.state_path(first.newest))
    state = json.loads(path.read_text())
    assert set(state) == {'seed', 'steps', 'train_epe', 'step_time', 'data', 'workers',
                          'devices', 'kvstore', 'weight_decay', 'format'}
    assert (state['devices'], state['kvstore'], state['weight_decay']) == ('cpu x1', 'device', 0)
    assert state['steps'] == 2 and state['data']['slots'][0]['samples'] == 1
    path.write_text('{"format": 1, "seed": "7"}')
    from common.errors import UserError
    with pytest.raises(UserError, match=r'run.json: not a run state of this project'):
        train(parts, 2, checkpoint=first.run_id)


# --- the run state file ------------------------------------------------------------------

def test_pruning_takes_the_run_state_with_its_checkpoint_and_orphans(tmp_path):
    run = 'abcNov01-0000'
    for steps in (10, 20, 30, 40):
        for suffix in ('.params', '.states', '.run.json'):
            (tmp_path / ('%s_%d%s' % (run, steps, suffix))).write_bytes(b'')
    (tmp_path / ('%s_50.run.json' % run)).write_bytes(b'')   # its .params never arrived
    (tmp_path / 'defNov02-0000_10.run.json').write_bytes(b'')  # another run's: untouched
    prune_checkpoints(run, str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ['%s_%d%s' % (run, s, e) for s in (20, 30, 40) for e in ('.params', '.states', '.run.json')]
        + ['defNov02-0000_10.run.json'])
    assert parse_checkpoint_name('abc_7.run.json') == ('abc', 7, 'run.json')
    assert runstate.state_path('weights/abc_7.params') == 'weights/abc_7.run.json'


def data(samples=('a', 'b'), batch=2):
    return TrainingData('chairs', [(list(samples), batch)], (8, 8), (64, 64))


def test_resume_notes_say_what_keeps_a_resume_from_being_exact():
    state = runstate.RunState(seed=3, steps=4, data=runstate.data_fingerprint(data()), workers=2)
    assert runstate.resume_notes(state, data(), 2, None, 'w/r_4.params') == []
    assert runstate.resume_notes(state, data(), 2, 3, 'w/r_4.params') == []
    assert runstate.resume_notes(state, data(), 2, 5, 'w/r_4.params') == [
        "--seed 5 replaces the run's seed 3: the resume is not exact"]
    assert runstate.resume_notes(state, data(), 4, None, 'w/r_4.params') == [
        'the run was trained by 2 worker(s), now 4: the data goes on exactly (no sample twice, '
        'none skipped), the augmentation draws differ']
    changed = runstate.resume_notes(state, data(('a', 'c')), 2, None, 'w/r_4.params')
    assert changed == ['the data differs from what the run read before r_4.params (dataset '
                       'config, samples, batch, crop or augmentation): the resume is not exact']
    cropped = data()
    cropped.target_shape = (128, 64)   # another target_shape in the dataset config
    assert runstate.resume_notes(state, cropped, 2, None, 'w/r_4.params') == changed
    assert runstate.resume_notes(state, data(), 2, None, 'w/r_4.params', 'cpu x2', 'local',
                                 0.5) == [
        'the run trained on cpu x1 per worker, now cpu x2: each device draws its own '
        'augmentation, so the resume is not exact',
        'the run summed gradients with --kvstore device, now local: the resume is not exact',
        'the weight decay was 0, now 0.5 (--use_wd is read on every start): the resume is not '
        'exact']
    assert runstate.resume_notes(None, data(), 1, None, 'w/r_4.params')[0].startswith(
        "r_4.params has no run state (an older checkpoint or the original's): the resume is "
        'not exact')


@pytest.mark.parametrize('change, problem', [
    ({'steps': 5}, 'it is of step 5, the checkpoint of step 4'),
    ({'seed': 2 ** 80}, 'seed is not an integer from 0 to 2147483647'),
    ({'seed': True}, 'seed is not an integer from 0 to 2147483647'),
    ({'kvstore': 3}, 'devices or kvstore is not a string'),
    ({'train_epe': [float('nan'), 1.0]}, 'train_epe is not a pair of finite numbers'),
    ({'extra': 1}, 'unknown extra'),
])
def test_a_run_state_that_does_not_fit_its_checkpoint_is_one_line(tmp_path, change, problem):
    from common.errors import UserError
    state = json.loads(runstate.RunState(seed=3, steps=4).to_json())
    state.update(change)
    (tmp_path / 'r_4.run.json').write_text(json.dumps(state))
    with pytest.raises(UserError) as error:
        runstate.read_state(str(tmp_path / 'r_4.params'), 4)
    assert str(error.value) == ('%s: not a run state of this project (%s); move it away to '
                                'resume without it (not exactly)' % (tmp_path / 'r_4.run.json',
                                                                     problem))
    (tmp_path / 'r_4.run.json').write_text('[' * 100000 + ']' * 100000)
    with pytest.raises(UserError, match='nested too deeply'):
        runstate.read_state(str(tmp_path / 'r_4.params'), 4)


def test_a_custom_lists_fingerprint_follows_the_files_it_names_not_its_line_numbers(tmp_path):
    """It digested the samples' names, LIST:LINE for a custom list: another pair on a line
    went unnoticed, and a comment line or another spelling of the list's path made an exact
    resume 'not exact'."""
    from reader import custom, flowio
    folder = tmp_path / 'data'
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ('a.png', 'b.png', 'c.png'):
        flowio.write_image(folder / name, rng.integers(0, 256, (16, 24, 3), dtype=np.uint8))
    flowio.write_flo(folder / 'f.flo', np.zeros((16, 24, 2), np.float32))

    def fingerprint(text, list_path):
        list_path.write_text(text)
        listed = custom.list_samples(list_path, progress=False)
        return runstate.data_fingerprint(TrainingData('custom', [(listed.samples, 1)], (8, 8),
                                                      (64, 64)))
    base = fingerprint('a.png b.png f.flo\nb.png c.png f.flo\n', folder / 'train.txt')
    assert fingerprint('# pairs\n\na.png b.png f.flo\nb.png c.png f.flo\n',
                       folder / 'train.txt') == base
    assert fingerprint('a.png b.png f.flo\nb.png c.png f.flo\n',
                       folder / '..' / 'data' / 'train.txt') == base
    assert fingerprint('a.png b.png f.flo\na.png c.png f.flo\n', folder / 'train.txt') != base
