"""The run state file beside each checkpoint (engine/runstate.py): pruned with its checkpoint,
named by the checkpoint's name, and what a resume says when it cannot be exact."""
from engine import runstate
from engine.runs import parse_checkpoint_name, prune_checkpoints
from reader.mixes import TrainingData


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
                       'config, samples or batch): the resume is not exact']
    assert runstate.resume_notes(None, data(), 1, None, 'w/r_4.params')[0].startswith(
        "r_4.params has no run state (an older checkpoint or the original's): the resume is "
        'not exact')
