"""engine/runs.py: checkpoints of a run in weights/ (-c lookup, pruning) and how a run starts
from -c (resume, branch or new run)."""
import pytest

from common.errors import UserError
from engine.runs import find_checkpoint, prune_checkpoints


def test_checkpoint_lookup_by_run_id(tmp_path):
    for name in ['8caNov12-1532_300000.params', '8caNov12-1532_295000.params',
                 '8cbNov13-0101_5000.params', '771Sep25-0735_500000.params', 'notes.txt']:
        (tmp_path / name).write_bytes(b'')
    newest = find_checkpoint('8caNov', tmp_path)
    assert newest == (str(tmp_path / '8caNov12-1532_300000.params'), '8caNov12-1532', 300000)
    assert find_checkpoint('771:500000', tmp_path)[2] == 500000
    assert find_checkpoint('8caNov12-1532:295000', tmp_path)[2] == 295000
    with pytest.raises(UserError, match='ambiguous.*8caNov12-1532, 8cbNov13-0101'):
        find_checkpoint('8c', tmp_path)
    with pytest.raises(UserError, match='has no checkpoint at 1000 steps'):
        find_checkpoint('771:1000', tmp_path)
    with pytest.raises(UserError, match='no checkpoint abc'):
        find_checkpoint('abc', tmp_path)
    path = str(tmp_path / '771Sep25-0735_500000.params')
    assert find_checkpoint(path, tmp_path) == (path, '771Sep25-0735', 500000)


def test_an_exact_run_id_wins_over_longer_ones(tmp_path):
    for name in ('untrained_0', 'untrainedfull_0', 'untrainedfull_5'):
        (tmp_path / (name + '.params')).write_bytes(b'')
    assert find_checkpoint('untrained', str(tmp_path))[:2] == (str(tmp_path / 'untrained_0.params'),
                                                             'untrained')
    assert find_checkpoint('untrainedf', str(tmp_path))[1:] == ('untrainedfull', 5)
    with pytest.raises(UserError, match='ambiguous, matches runs untrained, untrainedfull'):
        find_checkpoint('untr', str(tmp_path))


def test_prune_keeps_the_newest_three_of_the_run(tmp_path):
    names = ['abcNov01-0000_%d' % s for s in (5000, 10000, 15000, 20000, 25000)] + ['defNov02-0000_5000']
    for name in names:
        for ext in ('.params', '.states'):
            (tmp_path / (name + ext)).write_bytes(b'')
    # Orphan .states (a save killed between its two files): this run's go, another run's stay.
    orphans = ['abcNov01-0000_30000.states', 'defNov02-0000_10000.states']
    for name in orphans:
        (tmp_path / name).write_bytes(b'')
    prune_checkpoints('abcNov01-0000', str(tmp_path))
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([n + e for n in names[2:] for e in ('.params', '.states')] + orphans[1:])


def test_plan_start_continues_only_from_the_newest_checkpoint(tmp_path):
    from engine.runs import RunStart, plan_start
    older, newest = tmp_path / 'R_12.params', tmp_path / 'R_16.params'
    for path in (older, newest):
        path.write_bytes(b'')
    assert plan_start(None, None, 0, None) == RunStart(None, 0, False, None)
    assert plan_start(str(newest), 'R', 16, str(newest)) == RunStart('R', 16, True, None)
    assert plan_start(str(older), 'R', 12, str(newest)) == RunStart(None, 12, True, str(older))
    assert plan_start(str(newest), 'R', 16, str(newest), clear_steps=True) == RunStart(None, 0, False, None)
    assert plan_start(str(newest), 'R', 16, str(newest), head_only=True) == RunStart(None, 0, False, None)
    # A .params file outside weights/ (no run of that name there) continues as a new run.
    assert plan_start(str(older), 'R', 12, None) == RunStart(None, 12, True, str(older))


def test_a_new_run_id_is_never_one_a_run_has(tmp_path, monkeypatch):
    """Three hex characters a minute: two runs started in one minute may draw one id, and the
    second would take over the first's checkpoints and log."""
    from engine import runs
    drawn = iter(['abcDec07-0000', 'abcDec07-0000', 'defDec07-0000', 'fedDec07-0000'])
    monkeypatch.setattr(runs, 'new_run_id', lambda device_desc='': next(drawn))
    (tmp_path / 'weights').mkdir()
    (tmp_path / 'weights' / 'abcDec07-0000_2.params').write_bytes(b'')
    (tmp_path / 'logs').mkdir()
    (tmp_path / 'logs' / 'defDec07-0000.log').write_text('')
    log_of = lambda run_id: str(tmp_path / 'logs' / ('%s.log' % run_id))
    assert runs.unused_run_id('', str(tmp_path / 'weights'), log_of) == 'fedDec07-0000'
