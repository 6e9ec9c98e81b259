"""Training: steps on two CPU contexts, exact resume, checkpoint retention, head freezing, CLI."""
import ctypes
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import mxnet as mx
import pytest

import main as main_cli
from common.config import Config
from network.conventions import centralize
from network.pipeline import Pipeline
from engine.runs import prune_checkpoints
from engine.trainer import FlowTrainer, all_finite
from reader import chairs
from reader.flowio import read_flo, write_flo
from reader.crop import random_crop_and_flip
from reader.sample import load_sample

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / 'sample_data'
SCHEDULE = [[100, 1e-4], [200, 5e-5]]
OVERFIT_SCHEDULE = [[100, 4e-4]]


def pipeline(network='MaskFlownet_S', ctx=None, seed=0, keep_graph_memory=False):
    mx.random.seed(seed)
    return Pipeline(Config({'network': {'class': network}}), ctx, keep_graph_memory)


@pytest.fixture(scope='module')
def chairs_batch():
    """Two real 128x192 crops of the bundled FlyingChairs pair: uint8 images, (x, y) flow."""
    example = load_sample(chairs.list_samples(SAMPLE / 'FlyingChairs_release', 'train')[0])
    crops = []
    for top, left in ((40, 60), (200, 300)):
        crops.append([a[top:top + 128, left:left + 192].transpose(2, 0, 1) for a in example[:3]])
    return [np.stack(parts) for parts in zip(*crops)]


def weights(pipe, names=None):
    params = pipe.network._collect_params_with_prefix()
    return {k: p.data().asnumpy().copy() for k, p in params.items() if names is None or k in names}


def batch_loss(pipe, batch):
    """The multi-scale training loss per sample, without augmentation, on the first device."""
    img1, img2, flow = (mx.nd.array(a, ctx=pipe.ctx[0]) for a in batch)
    img1, img2, _ = centralize(img1 / 255.0, img2 / 255.0)
    predictions, _, _ = pipe.network(img1, img2)
    mask = mx.nd.ones_like(flow[:, :1])
    return pipe.loss(predictions, mx.nd.flip(flow, axis=1), mask).asnumpy()


def test_overfitting_one_batch_on_two_cpu_contexts(chairs_batch):
    pipe = pipeline(ctx=[mx.cpu(0), mx.cpu(1)])
    trainer = FlowTrainer(pipe, OVERFIT_SCHEDULE)
    loss_before = batch_loss(pipe, chairs_batch)
    epes = []
    for step in range(1, 11):
        assert trainer.set_learning_rate(step)
        epes.append(trainer.train_batch(*chairs_batch)['epe'])
    loss_after = batch_loss(pipe, chairs_batch)
    assert np.isfinite(loss_before).all() and np.isfinite(loss_after).all()
    assert (loss_after < loss_before).all() and loss_after.sum() < 0.95 * loss_before.sum(), \
        (loss_before, loss_after)
    assert np.isfinite(epes).all()
    # Adam's first steps overshoot; from then on the error on the same batch keeps falling.
    assert max(epes[-3:]) < min(epes[2:5]) and max(epes[-3:]) < 0.9 * epes[0], epes
    # Both contexts hold the same, updated weights.
    conv = pipe.network.conv1a[0].weight
    np.testing.assert_array_equal(conv.data(mx.cpu(0)).asnumpy(), conv.data(mx.cpu(1)).asnumpy())


def test_a_training_graph_that_keeps_its_memory_trains_exactly_as_one_that_does_not(
        chairs_batch, monkeypatch):
    """Static memory (the pipelines' default, off elsewhere in the tests) reuses every array of
    the forward and backward passes from step to step, on each device: no step may see
    another's values. Three steps on two contexts, then a step at another crop size."""
    runs = []
    for keep in (False, True):
        pipe = pipeline(ctx=[mx.cpu(0), mx.cpu(1)], keep_graph_memory=keep)
        assert dict(pipe.network._flags)['static_alloc'] == keep
        trainer = FlowTrainer(pipe, OVERFIT_SCHEDULE)
        batches = [chairs_batch] * 3 + [[a[..., 32:96, 32:160] for a in chairs_batch]]
        epes = []
        for step, batch in enumerate(batches, 1):
            trainer.set_learning_rate(step)
            epes.append(trainer.train_batch(*batch)['epe'])
        runs.append((epes, weights(pipe)))
    (epes, trained), (kept_epes, kept_trained) = runs
    np.testing.assert_allclose(kept_epes, epes, rtol=1e-5)
    assert len(set(epes)) == len(epes)   # the steps differ: each had the weights of the last
    for name, value in trained.items():
        np.testing.assert_allclose(kept_trained[name], value, rtol=1e-4, atol=1e-6, err_msg=name)


# Training steps in a process set up as the CLIs set theirs up (no mapped blocks: glibc's
# mallinfo2 then counts every array in its heap bytes in use): prints those bytes after the
# warm-up steps and after the measured ones.
STEPS_IN_USE = '''
import ctypes, sys
sys.path.insert(0, %r)
from common.devices import prepare_process
prepare_process()
import numpy as np
from common.config import Config
from network.pipeline import Pipeline
from engine.trainer import FlowTrainer
FIELDS = 'arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost'
class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in FIELDS.split()]
mallinfo2 = ctypes.CDLL(None).mallinfo2
mallinfo2.restype = MallInfo2
trainer = FlowTrainer(Pipeline(Config({'network': {'class': sys.argv[1]}})), [[10 ** 9, 1e-5]])
trainer.set_learning_rate(1)
rng = np.random.default_rng(0)
img1, img2 = (rng.integers(0, 256, (1, 3, 64, 128), dtype=np.uint8) for _ in range(2))
flow = rng.uniform(-3, 3, (1, 2, 64, 128)).astype(np.float32)
for steps in (4, int(sys.argv[2])):
    for _ in range(steps):
        trainer.train_batch(img1, img2, flow)
    print('in use', mallinfo2().uordblks)
''' % str(REPO)


@pytest.mark.parametrize('network, steps', [('MaskFlownet_S', 20), ('MaskFlownet', 8)])
def test_training_steps_do_not_leak_memory(network, steps):
    """MXNet's oneDNN concatenation leaks ~0.9 KB per part in every backward pass (see
    layers.concat): 190 KB a MaskFlownet-S step, 1 GB in 5,000 steps. In-use heap memory
    must not grow from step to step (the steps here leaked 190 and 400 KB each)."""
    if not hasattr(ctypes.CDLL(None), 'mallinfo2'):
        pytest.skip('needs glibc 2.33 or later (mallinfo2)')
    out = subprocess.run([sys.executable, '-c', STEPS_IN_USE, network, str(steps)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    warm, end = (int(line.split()[-1]) for line in out.stdout.splitlines()
                 if line.startswith('in use '))
    assert (end - warm) / steps < 20 * 1024, ((end - warm) / steps, warm, end)


def test_all_finite_checks_more_arrays_than_one_mxnet_call_takes(monkeypatch):
    # MaskFlownet trained whole has 270 gradients; one multi_all_finite call takes 200 (more
    # overflow MXNet's table and crash the process: checked here, before MXNet is called).
    from engine import trainer
    multi_all_finite = mx.nd.multi_all_finite

    def checked(*arrays, num_arrays):
        assert len(arrays) == num_arrays <= trainer.ALL_FINITE_MAX_ARRAYS
        return multi_all_finite(*arrays, num_arrays=num_arrays)
    monkeypatch.setattr(mx.nd, 'multi_all_finite', checked)
    arrays = [mx.nd.ones((3,), ctx=mx.cpu(k // 225)) for k in range(450)]   # 225 per device
    assert all_finite(arrays)
    # Each device's first and second call, at their first and last array.
    for bad in (0, 199, 200, 224, 225, 424, 425, 449):
        arrays[bad][1] = np.nan if bad % 2 else np.inf
        assert not all_finite(arrays), bad
        arrays[bad][1] = 1


def test_uneven_batch_over_devices_is_refused(chairs_batch):
    from common.errors import UserError
    trainer = FlowTrainer(pipeline(ctx=[mx.cpu(0), mx.cpu(1)]), SCHEDULE)
    trainer.set_learning_rate(1)
    with pytest.raises(UserError, match='cannot be split evenly over 2 devices'):
        trainer.train_batch(*[a[:1] for a in chairs_batch])


def test_learning_rate_schedule_and_end():
    trainer = FlowTrainer(pipeline(), SCHEDULE)
    assert trainer.set_learning_rate(100) and trainer.trainer.learning_rate == 1e-4
    assert trainer.set_learning_rate(101) and trainer.trainer.learning_rate == 5e-5
    assert not trainer.set_learning_rate(201)


def test_resume_restores_weights_and_optimizer_state_exactly(chairs_batch, tmp_path):
    first = pipeline(seed=1)
    trainer = FlowTrainer(first, SCHEDULE)
    for step in (1, 2):
        trainer.set_learning_rate(step)
        trainer.train_batch(*chairs_batch)
    trainer.save(str(tmp_path / 'run_2'))
    trainer.set_learning_rate(3)
    trainer.train_batch(*chairs_batch)
    expected = weights(first)

    second = pipeline(seed=2)
    resumed = FlowTrainer(second, SCHEDULE)
    second.load(tmp_path / 'run_2.params')
    resumed.load_states(str(tmp_path / 'run_2.states'))
    resumed.set_learning_rate(3)
    resumed.train_batch(*chairs_batch)
    got = weights(second)
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)

    # Without the optimizer state, the same step gives different weights (Adam's moments).
    third = pipeline(seed=3)
    fresh = FlowTrainer(third, SCHEDULE)
    third.load(tmp_path / 'run_2.params')
    fresh.set_learning_rate(3)
    fresh.train_batch(*chairs_batch)
    assert np.abs(weights(third)['conv1a.0.weight'] - expected['conv1a.0.weight']).max() > 1e-7


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


def test_fixed_head_does_not_change_while_stage_two_trains(chairs_batch):
    pipe = pipeline('MaskFlownet', keep_graph_memory=True)
    pipe.fix_head()
    trainer = FlowTrainer(pipe, SCHEDULE)
    before = weights(pipe)
    trainer.set_learning_rate(1)
    trainer.train_batch(*[a[:, :, :64, :128] for a in chairs_batch])
    after = weights(pipe)
    for name in before:
        changed = np.abs(after[name] - before[name]).max() > 0
        assert changed != name.startswith('MaskFlownet_S.'), name


def test_crop_and_flip_mirror_the_width_and_negate_u():
    rng = np.random.default_rng(0)
    img = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    flow = np.stack([np.full((4, 6), 2.0), np.full((4, 6), -1.0)], axis=-1).astype(np.float32)
    flow[0, 0] = (5.0, 7.0)
    seen = set()
    for _ in range(20):
        out = random_crop_and_flip((img, img, flow, None), (4, 6), rng)
        assert len(out) == 3 and out[0].shape == (3, 4, 6)
        if out[0][0, 0, 0] == img[0, 5, 0]:   # mirrored
            seen.add('flip')
            assert out[2][0, 0, 5] == -5.0 and out[2][1, 0, 5] == 7.0 and out[2][0, 1, 1] == -2.0
        else:
            seen.add('plain')
            assert out[2][0, 0, 0] == 5.0 and out[2][1, 1, 1] == -1.0
    assert seen == {'flip', 'plain'}


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """An empty working directory with a chairs-only dataset file (fast validation)."""
    roots = tmp_path / 'datasets.yaml'
    roots.write_text('chairs: %s\n' % (SAMPLE / 'FlyingChairs_release'))
    monkeypatch.setenv('MASKFLOWNET_DATASETS', str(roots))
    monkeypatch.chdir(tmp_path)
    write_small_chairs_config(tmp_path)
    return tmp_path


def write_small_chairs_config(folder):
    """small.yaml: FlyingChairs with 128 x 192 crops, to keep CLI training tests fast and lean."""
    (folder / 'small.yaml').write_text('dataset: chairs\norig_shape: [128, 192]\n'
                                       'target_shape: [128, 192]\n')


def log_lines(path):
    return [re.sub(r'^\[\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\] ', '', line)
            for line in Path(path).read_text().splitlines()]


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


def test_maskflownet_from_a_maskflownet_s_checkpoint_loads_and_freezes_the_head(workdir, golden_checkpoint):
    # A MaskFlownet-S run's checkpoint: stage 2 starts a new run at step 0 even without
    # --clear_steps (the S run's optimizer state does not fit MaskFlownet).
    s_ckpt = workdir / 's01Nov01-0000_1000.params'
    s_ckpt.write_bytes(golden_checkpoint('MaskFlownet_S').read_bytes())
    assert main_cli.main(['MaskFlownet.yaml', '--dataset_cfg', 'small.yaml', '--debug', '-c', str(s_ckpt),
                          '--max_steps', '2']) == 0
    saved = list((workdir / 'weights').glob('*_2.params'))
    assert len(saved) == 1 and not saved[0].name.startswith('s01Nov01-0000')
    trained = mx.nd.load(str(saved[0]))
    head = mx.nd.load(str(s_ckpt))
    for name, value in head.items():
        np.testing.assert_array_equal(trained['MaskFlownet_S.' + name].asnumpy(), value.asnumpy())


def test_training_errors_are_one_line(workdir, capsys):
    assert main_cli.main(['MaskFlownet_S.yaml', '--dataset_cfg', 'sintel.yaml', '--debug']) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and 'MASKFLOWNET_SINTEL' in err and err.count('\n') == 1
    assert not (workdir / 'weights').exists()


def test_debug_uses_the_bundled_samples_whatever_dataset_variables_say(tmp_path, monkeypatch):
    monkeypatch.setenv('MASKFLOWNET_DATASETS', 'placeholder')   # recorded, so restored afterwards
    monkeypatch.delenv('MASKFLOWNET_DATASETS')                  # (main.py sets it for --debug)
    monkeypatch.setenv('MASKFLOWNET_CHAIRS', str(tmp_path / 'no_such_chairs'))
    monkeypatch.chdir(tmp_path)
    write_small_chairs_config(tmp_path)
    assert main_cli.main(['MaskFlownet_S.yaml', '--dataset_cfg', 'small.yaml', '--debug',
                          '--max_steps', '1']) == 0
    log, = (tmp_path / 'logs' / 'debug').glob('*.log')
    # The bundled samples: one chairs training pair; chairs val + Sintel clean and final.
    assert 'start=0, train=1, val=3' in log.read_text()


# --------------------------------------------------------------- failures and resume semantics

def test_a_non_finite_loss_stops_the_step_before_the_weights_change(chairs_batch):
    from engine.trainer import NonFiniteStep
    pipe = pipeline()
    trainer = FlowTrainer(pipe, SCHEDULE)
    before = weights(pipe)
    img1, img2, flow = chairs_batch
    flow = flow.copy()
    flow[1, 0, 5, 7] = np.inf
    trainer.set_learning_rate(1)
    with pytest.raises(NonFiniteStep, match=r'non-finite loss \(\d.*, inf\)'):
        trainer.train_batch(img1, img2, flow)
    after = weights(pipe)
    for name in before:
        np.testing.assert_array_equal(after[name], before[name], err_msg=name)


def test_weight_decay_is_the_runs_own_also_after_loading_states(tmp_path, chairs_batch):
    small = [a[:, :, :64, :128] for a in chairs_batch]
    decayed = FlowTrainer(pipeline(), SCHEDULE, weight_decay=0.5)
    decayed.set_learning_rate(1)
    decayed.train_batch(*small)
    decayed.save(str(tmp_path / 'wd_1'))
    plain = FlowTrainer(pipeline(), SCHEDULE)
    plain.load_states(str(tmp_path / 'wd_1.states'))
    assert plain.trainer.optimizer.wd == 0          # resumed without --use_wd: no decay
    again = FlowTrainer(pipeline(), SCHEDULE, weight_decay=0.25)
    plain.save(str(tmp_path / 'plain_1'))
    again.load_states(str(tmp_path / 'plain_1.states'))
    assert again.trainer.optimizer.wd == 0.25       # resumed with --use_wd: decay


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


def optimizer_wd(states_path):
    import pickle
    _, optimizer = pickle.loads(Path(states_path).read_bytes())
    return optimizer.wd


def test_branching_resume_nan_stop_and_stale_files(tmp_path, monkeypatch, capsys):
    """One small run through the CLI: --use_wd reaches the optimizer, a resume from an older
    checkpoint branches into a new run and leaves the old history alone, a non-finite label
    stops the run with one line and no checkpoint, and dead processes' temp files go."""
    chairs_root = tmp_path / 'chairs'
    shutil.copytree(SAMPLE / 'FlyingChairs_release', chairs_root)
    (tmp_path / 'roots.yaml').write_text('chairs: %s\n' % chairs_root)
    monkeypatch.setenv('MASKFLOWNET_DATASETS', str(tmp_path / 'roots.yaml'))
    monkeypatch.chdir(tmp_path)
    write_small_chairs_config(tmp_path)
    (tmp_path / 'net.yaml').write_text('optimizer:\n  learning_rate: [[100, 1.0e-4]]\n  wd: 0.5\n'
                                       'network:\n  class: MaskFlownet_S\n')
    common = ['net.yaml', '--dataset_cfg', 'small.yaml', '--debug', '--seed', '1']
    assert main_cli.main(common + ['--max_steps', '6', '--use_wd']) == 0
    log, = (tmp_path / 'logs' / 'debug').glob('*.log')
    run = log.stem
    weights_dir = tmp_path / 'weights'
    first = {p.name: p.read_bytes() for p in weights_dir.iterdir()}
    assert sorted(first) == ['%s_%d.%s' % (run, s, e) for s in (2, 4, 6)
                             for e in ('params', 'run.json', 'states')]
    assert optimizer_wd(weights_dir / ('%s_6.states' % run)) == 0.5
    out = capsys.readouterr().out
    assert 'validation: sintel: not configured (set MASKFLOWNET_SINTEL' in out

    # Resume from step 4 while 6 exists: a new run that starts at step 4, without --use_wd.
    stale = weights_dir / ('%s_4.params.tmp-%d' % (run, 2 ** 22 + 1))   # no such process
    stale.write_bytes(b'left by a killed save')
    assert main_cli.main(common + ['-c', '%s:4' % run, '--max_steps', '1']) == 0
    assert not stale.exists()
    for name, content in first.items():
        assert (weights_dir / name).read_bytes() == content, name
    branch = sorted({p.name.rsplit('_', 1)[0] for p in weights_dir.iterdir()} - {run})
    assert len(branch) == 1
    branch = branch[0]
    assert sorted(p.name for p in weights_dir.glob(branch + '*')) == \
        ['%s_5.%s' % (branch, e) for e in ('params', 'run.json', 'states')]
    assert optimizer_wd(weights_dir / ('%s_5.states' % branch)) == 0
    branch_log = log_lines(tmp_path / 'logs' / 'debug' / ('%s.log' % branch))
    assert branch_log[0].startswith('start=4, ')
    assert 'branched_from=weights/%s_4.params' % run in branch_log
    out = capsys.readouterr().out
    assert 'continuing its history as the new run %s' % branch in out
    assert 'newest checkpoint weights/%s_5.params' % branch in out

    # A label that overflows the loss (finite in the file, inf once squared).
    flo = chairs_root / 'data' / '00001_flow.flo'
    flow = read_flo(flo)
    write_flo(flo, flow * np.float32(1e30))
    assert main_cli.main(common + ['-c', branch, '--max_steps', '2']) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and err.startswith('error: step 6: non-finite loss (')
    assert 'on samples chairs/00001' in err and 'newest checkpoint weights/%s_5.params' % branch in err
    assert sorted(p.name for p in weights_dir.glob(branch + '*')) == \
        ['%s_5.%s' % (branch, e) for e in ('params', 'run.json', 'states')]


def test_a_non_finite_gradient_with_a_finite_loss_is_caught(chairs_batch, monkeypatch):
    from engine.trainer import NonFiniteStep
    pipe = pipeline()
    trainer = FlowTrainer(pipe, SCHEDULE)
    loss = pipe.loss
    # sqrt(0 * loss) is 0, a finite loss, whose gradient is 0 * inf = NaN.
    monkeypatch.setattr(pipe, 'loss', lambda *args: mx.nd.sqrt(loss(*args) * 0))
    trainer.set_learning_rate(1)
    with pytest.raises(NonFiniteStep, match=r'non-finite gradient \(the loss was finite\)'):
        trainer.train_batch(*[a[:, :, :64, :128] for a in chairs_batch])


def test_a_failed_params_write_takes_its_states_file_along(tmp_path, monkeypatch):
    from common.errors import UserError
    pipe = pipeline()
    trainer = FlowTrainer(pipe, SCHEDULE)

    def disk_full(path):
        raise UserError('%s: cannot write (No space left on device)' % path)
    monkeypatch.setattr(pipe, 'save', disk_full)
    with pytest.raises(UserError, match='No space left'):
        trainer.save(str(tmp_path / 'run_3'))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize('args, message', [
    (['--max_steps', '0'], '--max_steps 0: must be 1 or more'),
    (['--max_steps', '-3'], '--max_steps -3: must be 1 or more'),
    (['-g=-1'], "-g -1: expected distinct comma-separated GPU ids"),
    (['-g', '0,0'], "-g 0,0: expected distinct comma-separated GPU ids"),
])
def test_bad_training_options_are_one_line_before_any_work(workdir, capsys, args, message):
    assert main_cli.main(['MaskFlownet_S.yaml', '--debug'] + args) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ' + message) and err.count('\n') == 1, err
    assert not (workdir / 'logs').exists() and not (workdir / 'weights').exists()


@pytest.mark.parametrize('line, message', [
    ('  upfeat_ch: abc', "network.upfeat_ch: must be a list; got 'abc'"),
    ('  upfeat_ch: [16, 16, 16]', 'network.upfeat_ch: must be a list of 4 positive integers'),
    ('  flow_multiplier: x', "network.flow_multiplier: must be a number; got 'x'"),
    ('  deform_bias: maybe', "network.deform_bias: must be true or false; got 'maybe'"),
    ('  mw: [a, b]', "network.mw[0]: must be a number; got 'a'"),
])
def test_bad_network_config_values_name_the_file_and_key(workdir, capsys, line, message):
    config = workdir / 'net.yaml'
    config.write_text('network:\n  class: MaskFlownet_S\n%s\n' % line)
    assert main_cli.main([str(config), '--debug']) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: %s: %s' % (config, message)) and err.count('\n') == 1


def test_a_dataset_config_given_as_the_network_config_is_refused(workdir, capsys):
    assert main_cli.main(['chairs.yaml', '--debug']) == 2
    err = capsys.readouterr().err
    assert 'chairs.yaml: a dataset config, not a network config' in err
