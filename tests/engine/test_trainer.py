"""engine/trainer.py: optimizer steps on one and two CPU contexts, the schedule, exact resume
from .states, head freezing, non-finite steps, the batch split and memory per step."""
import ctypes
import re
import subprocess
import sys

import numpy as np
import mxnet as mx
import pytest

from common.config import Config
from common.errors import UserError
from network.conventions import centralize
from network.pipeline import Pipeline
from engine.trainer import FlowTrainer, all_finite, check_batch_split
from reader import chairs
from reader.sample import load_sample
from tests.helpers import REPO, SAMPLE

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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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
    trainer = FlowTrainer(pipeline(ctx=[mx.cpu(0), mx.cpu(1)]), SCHEDULE)
    trainer.set_learning_rate(1)
    with pytest.raises(UserError, match='cannot be split evenly over 2 devices'):
        trainer.train_batch(*[a[:1] for a in chairs_batch])


def test_the_batch_must_split_over_all_devices_of_all_workers():
    check_batch_split(8, 2, 4)
    with pytest.raises(UserError, match=re.escape('batch of 8 samples cannot be split evenly '
                                                  'over 3 workers x 1 devices (-g)')):
        check_batch_split(8, 1, 3)
    with pytest.raises(UserError, match=re.escape('over 2 workers x 3 devices')):
        check_batch_split(4, 3, 2)


def test_learning_rate_schedule_and_end():
    trainer = FlowTrainer(pipeline(), SCHEDULE)
    assert trainer.set_learning_rate(100) and trainer.trainer.learning_rate == 1e-4
    assert trainer.set_learning_rate(101) and trainer.trainer.learning_rate == 5e-5
    assert not trainer.set_learning_rate(201)


@pytest.mark.slow
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


@pytest.mark.slow
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


# --------------------------------------------------------------- failures

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


@pytest.mark.slow
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
    pipe = pipeline()
    trainer = FlowTrainer(pipe, SCHEDULE)

    def disk_full(path):
        raise UserError('%s: cannot write (No space left on device)' % path)
    monkeypatch.setattr(pipe, 'save', disk_full)
    with pytest.raises(UserError, match='No space left'):
        trainer.save(str(tmp_path / 'run_3'))
    assert list(tmp_path.iterdir()) == []
