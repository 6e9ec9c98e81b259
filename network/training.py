"""Training: a run of the paper's schedule as one library call (``run_training``), and its parts:
the optimizer and its schedule, one training step, run ids, logs, checkpoints, the loop.

``main.py`` only parses arguments and calls ``run_training``. A run may be one of several
worker processes of MXNet's parameter-server kvstore (``--kvstore dist_*``, started by
``launch.py``): each reads its part of every batch, and worker 0 alone logs, validates and saves.
"""
import contextlib
import datetime
import hashlib
import json
import os
import socket
import sys
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np
import mxnet as mx
from mxnet import autograd, gluon

from common.errors import UserError
from common.files import atomic_output, remove_stale_temporaries
from reader import roots as dataset_roots
from reader.loader import BatchStream
from reader.mixes import shrink_for_debug, training_data
from reader.sample import load_sample

from . import checkpoint
from .augmentation import make_augmentations, random_crop_and_flip
from .config import learning_rate_at
from .conventions import centralize, flow_yx, full_mask, mask_weights, unit_images
from .evaluate import example_prediction, validate_sets
from .runlog import RunLog, format_pairs
from .pipeline import Pipeline

KEEP_CHECKPOINTS = 3
LOG_EVERY = 50   # after the first 20 steps, as the original


def new_run_id(device_desc='', now=None):
    """Three hex characters and the start time, e.g. ``8caNov12-1532`` (the original's format)."""
    now = now or datetime.datetime.now()
    stamp = now.strftime('%b%d-%H%M')
    digest = hashlib.sha224((socket.gethostname() + stamp + device_desc + str(time.time_ns())).encode())
    return digest.hexdigest()[:3] + stamp


@dataclass(frozen=True)
class RunStart:
    """How a training run starts: under which run id, at which step, from which checkpoint."""
    run_id: Optional[str]          # the run continued; None: a new run id is made
    steps: int                     # the step count the run starts at
    load_states: bool              # restore the optimizer state saved with the checkpoint
    branched_from: Optional[str]   # a new run continuing this checkpoint's history


def plan_start(path, run_id, steps, newest_of_run, clear_steps=False, head_only=False):
    """Resume or new run, for ``-c`` resolved to (path, run_id, steps).

    ``newest_of_run``: the path of the newest checkpoint of ``run_id`` in weights/ (or None).
    Only a resume from that newest checkpoint continues the run: resuming from an older one
    would save over (and prune) the run's later checkpoints, so it starts a new run id that
    keeps the step count and records where it branched from. ``--clear_steps`` and a
    MaskFlownet-S head for MaskFlownet start a new run at step 0 from the weights alone.
    """
    if path is None or clear_steps or head_only:
        return RunStart(None, 0, False, None)
    if run_id is not None and newest_of_run is not None and _same_file(path, newest_of_run):
        return RunStart(run_id, steps, True, None)
    return RunStart(None, steps, True, path)


def _same_file(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_batch_split(batch_size, devices, workers=1):
    if batch_size % (devices * workers):
        where = '%d devices (-g)' % devices
        if workers > 1:
            where = '%d workers x %s' % (workers, where)
        raise UserError('batch of %d samples cannot be split evenly over %s'
                        % (batch_size, where))


# --- the kvstore: one process, or one worker of a parameter-server job -----------------------

KVSTORES = ('device', 'local', 'dist_sync', 'dist_device_sync', 'dist_async')
RUN_RECORD_ENV = 'MASKFLOWNET_RUN_RECORD'   # set by launch.py: where worker 0 names its run


@dataclass(frozen=True)
class Workers:
    """This process's place among the training processes: worker ``rank`` of ``count``."""
    rank: int = 0
    count: int = 1
    kvstore: str = 'device'

    @property
    def lead(self):
        """Worker 0 alone writes logs, validation results and checkpoints."""
        return self.rank == 0

    @property
    def distributed(self):
        return self.kvstore.startswith('dist')


def open_kvstore(name='device'):
    """(kvstore for gluon.Trainer, Workers) for ``--kvstore name``.

    ``device`` and ``local`` stay in this process (Gluon creates them when there are several
    devices). The ``dist_*`` kinds join the parameter-server job whose scheduler the DMLC_*
    variables name (launch.py sets them); this blocks until every worker and server has joined.
    """
    if name not in KVSTORES:
        raise UserError('--kvstore %s: expected one of %s' % (name, ', '.join(KVSTORES)))
    if not name.startswith('dist'):
        return name, Workers(kvstore=name)
    if os.environ.get('DMLC_ROLE') != 'worker' or 'DMLC_PS_ROOT_URI' not in os.environ:
        raise UserError('--kvstore %s: this process is not a worker of a distributed job; start '
                        'it with launch.py (python launch.py -n WORKERS -s SERVERS --launcher '
                        'local python main.py ...)' % name)
    kvstore = mx.kv.create(name)
    return kvstore, Workers(kvstore.rank, kvstore.num_workers, name)


def seed_augmentation(seed, workers):
    """Give workers other than 0 their own draws of the network-side augmentation.

    Every worker seeds MXNet alike before building the network (so all start from the same
    weights); worker 0 then draws exactly as a single process would, the others from a seed of
    their own, so that no two workers augment their samples identically.
    """
    if workers.rank:
        entropy = None if seed is None else [seed, workers.rank]
        mx.random.seed(int(np.random.SeedSequence(entropy).generate_state(1)[0] % 2 ** 31))


class MovingAverage:
    """Exponential moving average with bias correction, as the original's training log uses."""

    def __init__(self, ratio=0.95):
        self.ratio = ratio
        self.total = 0.
        self.weight = 1e-8

    def update(self, value):
        self.total = self.total * self.ratio + value
        self.weight = self.weight * self.ratio + 1

    @property
    def average(self):
        return self.total / self.weight


class NonFiniteStep(UserError):
    """A training step gave a non-finite loss or gradient; the weights were not updated."""


class FlowTrainer:
    """Adam on a pipeline's network, the piecewise learning-rate schedule, and train_batch.

    ``weight_decay``: the original configs list ``optimizer.wd`` but never pass it to the
    optimizer; it is applied only when given here explicitly (``--use_wd``), so that the
    published schedules reproduce by default. It holds on resume too: loading optimizer
    states does not bring back the weight decay of the run that saved them.
    """

    def __init__(self, pipe, lr_schedule, weight_decay=None, kvstore='device', workers=Workers()):
        self.pipe = pipe
        self.lr_schedule = lr_schedule
        learning_rate_at(lr_schedule, 0)   # validates the schedule now, with a clear error
        self.weight_decay = float(weight_decay or 0)
        self.workers = workers
        # dist_sync and dist_device_sync sum the gradients on the servers and every worker
        # runs the same Adam step on the same sum, so its state is local and saved like a single
        # process's. dist_async can only update on the servers: Adam's moments live there.
        self.states_on_servers = workers.kvstore == 'dist_async'
        update_on_kvstore = None   # Gluon's choice, as before, for device and local
        if workers.distributed:
            update_on_kvstore = self.states_on_servers
        self.trainer = gluon.Trainer(pipe.network.collect_params(), 'adam',
                                     {'learning_rate': 1e-4, 'wd': self.weight_decay},
                                     kvstore=kvstore, update_on_kvstore=update_on_kvstore)
        self.lr = None
        self._weights_shared = False

    def set_learning_rate(self, steps):
        """Set the rate for ``steps``; False once the schedule has ended (training stops)."""
        lr = learning_rate_at(self.lr_schedule, steps)
        if lr is None:
            return False
        if lr != self.lr:
            self.trainer.set_learning_rate(lr)
            if self.states_on_servers and self._weights_shared and self.workers.lead:
                # The servers hold a copy of the optimizer; a new rate must be sent to them,
                # and sending it restarts Adam's moments there (see README).
                self.trainer._kvstore.set_optimizer(self.trainer._optimizer)
        self.lr = lr
        return True

    def train_batch(self, img1, img2, label, mask=None, geo_aug=None, color_aug=None):
        """One optimizer step on a batch (uint8 NCHW images, (x, y) NCHW flow, 0/255 mask)."""
        ctx = self.pipe.ctx
        batch_size = img1.shape[0]
        check_batch_split(batch_size, len(ctx))
        if self.workers.distributed and not self._weights_shared:
            self._share_weights()
        if mask is None:
            mask = full_mask(label.shape[2:], leading=(batch_size,))
        parts = [gluon.utils.split_and_load(x, ctx) for x in (img1, img2, label, mask)]
        losses, epes = [], []
        with autograd.record():
            for img1s, img2s, labels, masks in zip(*parts):
                (img1s, img2s), masks = unit_images(img1s, img2s), mask_weights(masks)
                labels = labels.astype('float32', copy=False)
                if geo_aug is not None:
                    img1s, img2s, labels, masks = geo_aug(img1s, img2s, labels, masks)
                if color_aug is not None:
                    img1s, img2s = color_aug(img1s, img2s)
                img1s, img2s, _ = centralize(img1s, img2s)
                predictions, _, _ = self.pipe.network(img1s, img2s)
                labels = flow_yx(labels)   # (x, y) through augmentation, (y, x) in the network
                losses.append(self.pipe.loss(predictions, labels, masks))
                epes.append(self.pipe.epe_with_mask(self.pipe.upsampler(predictions[-1]), labels, masks))
        for loss in losses:
            loss.backward()
        self._check_finite(losses)
        # Gradients are summed over all workers' devices; synchronous steps average them over
        # the whole batch, asynchronous ones apply each worker's batch on its own.
        self.trainer.step(batch_size if self.states_on_servers else batch_size * self.workers.count)
        return {'epe': float(np.mean(np.concatenate([e.asnumpy() for e in epes])))}

    def _check_finite(self, losses):
        """Raise NonFiniteStep, before the optimizer step, for a non-finite loss or gradient."""
        if not all_finite(losses):
            values = np.concatenate([loss.asnumpy() for loss in losses])
            raise NonFiniteStep('non-finite loss (%s)' % ', '.join('%g' % v for v in values))
        grads = [g for p in self.pipe.network.collect_params().values() if p.grad_req != 'null'
                 for g in p.list_grad()]
        if not all_finite(grads):
            raise NonFiniteStep('non-finite gradient (the loss was finite)')

    def _share_weights(self):
        """Put worker 0's weights on every worker before the first forward pass.

        Gluon broadcasts them only inside the first step, after each worker has computed its
        first gradients with its own weights. Called after any checkpoint was loaded.
        """
        self.trainer._init_kvstore()
        self.trainer._init_params()
        self._weights_shared = True

    # --- checkpoints ---------------------------------------------------------------------

    def save(self, prefix):
        """``prefix.params`` and ``prefix.states``, each written atomically, or neither."""
        checkpoint.check_finite(self.pipe.network, prefix + '.params')
        # .states first: -c RUN picks the newest .params, which must have its .states.
        with atomic_output(prefix + '.states') as tmp:
            if self.states_on_servers:
                # The local updater: the optimizer and its settings, but no moments (they are
                # on the servers, which cannot hand them back).
                with open(tmp, 'wb') as f:
                    f.write(self.trainer._updaters[0].get_states(dump_optimizer=True))
            else:
                self.trainer.save_states(tmp)
        try:
            self.pipe.save(prefix + '.params')
        except BaseException:
            with contextlib.suppress(OSError):
                os.remove(prefix + '.states')   # no .states without its .params
            raise

    def load_states(self, path):
        if not os.path.isfile(path):
            raise UserError('optimizer state %s: no such file (needed to resume; use '
                            '--clear_steps to start a new run from the weights only)' % path)
        if self.states_on_servers:
            print('warning: --kvstore dist_async keeps the optimizer state on the servers: '
                  'Adam restarts its moments (weights and step count come from the checkpoint)',
                  file=sys.stderr)
            return
        try:
            self.trainer.load_states(path)
        except Exception as error:   # pickle and MXNet errors alike: a bad or foreign file
            raise UserError('optimizer state %s: cannot be read (%s)' % (path, error)) from None
        # The states file holds the saving run's optimizer, weight decay included.
        self.trainer._optimizer.wd = self.weight_decay


# multi_all_finite takes at most this many arrays a call: MXNet copies their addresses into a
# fixed table of 200 (MultiAllFiniteKernelParam) and writes past it for more, a crash (bus
# error) at MaskFlownet's 270 parameters.
ALL_FINITE_MAX_ARRAYS = 200


def all_finite(arrays):
    """Whether every value of the NDArrays (on any devices) is finite."""
    by_device = {}
    for array in arrays:
        by_device.setdefault(array.context, []).append(array)
    groups = [group[start:start + ALL_FINITE_MAX_ARRAYS] for group in by_device.values()
              for start in range(0, len(group), ALL_FINITE_MAX_ARRAYS)]
    return all(mx.nd.multi_all_finite(*group, num_arrays=len(group)).asscalar() == 1
               for group in groups)


def prune_checkpoints(run_id, weights_dir, keep=KEEP_CHECKPOINTS):
    """Delete all but the newest ``keep`` checkpoints (.params and .states) of ``run_id``,
    and the run's ``.states`` files whose ``.params`` never arrived (a save killed between
    the two). Other runs' files are never touched."""
    mine = [c for c in checkpoint.list_checkpoints(weights_dir) if c[0] == run_id]
    stale = [path[:-len('.params')] + ext for _, _, path in (mine[:-keep] if keep else mine)
             for ext in ('.params', '.states')]
    prefix = run_id + '_'
    for name in os.listdir(weights_dir):
        step = name[len(prefix):-len('.states')]
        if (name.startswith(prefix) and name.endswith('.states') and step.isdigit()
                and not os.path.exists(os.path.join(weights_dir, name[:-len('.states')] + '.params'))):
            stale.append(os.path.join(weights_dir, name))
    for path in stale:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


# --- the loop ------------------------------------------------------------------------------

def make_stream(data, seed=None, workers=Workers()):
    """This worker's part of each batch; one slot per sample position, so a part is a slice."""
    slots = [(samples, load_sample) for samples, count in data.mix for _ in range(count)]
    crop_shape = data.orig_shape
    return BatchStream(slots, data.batch_size,
                       lambda example, rng, name: random_crop_and_flip(example, crop_shape, rng, name),
                       seed=seed, part=(workers.rank, workers.count))


def train(pipe, trainer, data, run_id, steps, log, weights_dir=checkpoint.WEIGHTS_DIR,
          validation_steps=2500, checkpoint_steps=5000, max_steps=None, seed=None,
          validation_batch=1, workers=Workers()):
    """The training loop; returns the step count reached.

    Stops when the learning-rate schedule ends, or after ``max_steps`` more steps. Validates
    every ``validation_steps`` (and after the first step), saves every ``checkpoint_steps`` and
    keeps the newest three checkpoints of the run. Workers other than 0 (``log`` None there)
    only train.
    """
    seed_augmentation(seed, workers)
    geo_aug, color_aug = make_augmentations(data.dataset, data.target_shape, data.orig_shape,
                                            data.batch_size // (len(pipe.ctx) * workers.count))
    train_epe, total_time = MovingAverage(), MovingAverage()
    stop_at = None if max_steps is None else steps + max_steps
    last = None
    with make_stream(data, seed, workers) as stream:
        while stop_at is None or steps < stop_at:
            if not trainer.set_learning_rate(steps + 1):
                break
            steps += 1
            now = time.perf_counter()
            if last is not None:
                total_time.update(now - last)
            last = now
            batch = next(stream)
            try:
                result = trainer.train_batch(batch.img1, batch.img2, batch.flow, batch.mask,
                                             geo_aug=geo_aug, color_aug=color_aug)
            except NonFiniteStep as error:
                message = ('step %d: %s on samples %s; the weights were not updated and no '
                           'checkpoint was written' % (steps, error, ', '.join(batch.names)))
                if log is not None:
                    log.log('stopped=%s' % message)
                raise NonFiniteStep(message) from None
            if not workers.lead:
                continue
            if steps <= 20 or steps % LOG_EVERY == 0:
                train_epe.update(result['epe'])
                log.log('steps=%d, epe=%s, total_time=%.2f' % (steps, train_epe.average,
                                                                total_time.average))
                log.learning_rate(steps, trainer.lr)
            if steps % validation_steps == 0 or steps <= 1:
                pipe.release_graph_memory()   # each graph's memory, not both at once
                results = validate_sets(pipe, data.validation, validation_batch)
                if results:
                    log.log('steps=%d, %s' % (steps, format_pairs(results.items())))
                    log.validation_images(steps, lambda: example_prediction(pipe, data.validation))
                pipe.release_graph_memory()
            # A run stopped by max_steps also saves, so that it can be resumed where it stopped.
            if steps % checkpoint_steps == 0 or steps == stop_at:
                trainer.save(os.path.join(weights_dir, '%s_%d' % (run_id, steps)))
                prune_checkpoints(run_id, weights_dir)
    return steps


def log_start(log, steps, data, batch_args, branched_from=None, workers=Workers()):
    log.log('start=%d, train=%d, val=%d, host=%s, batch=%d%s'
            % (steps, data.train_size, data.validation_size, socket.gethostname(), data.batch_size,
               ', workers=%d, kvstore=%s' % (workers.count, workers.kvstore)
               if workers.distributed else ''))
    log.log(format_pairs((k, repr(v)) for k, v in batch_args.items()))
    if branched_from:
        log.log('branched_from=%s' % branched_from)
    for key in data.skipped:
        print('validation: %s: %s' % (key, dataset_roots.skip_note(key)))
    sys.stdout.flush()


# --- a whole run ----------------------------------------------------------------------------

DEBUG_STEPS = 4          # --debug: steps per invocation
DEBUG_INTERVAL = 2       # --debug: validate and save every this many steps


@dataclass(frozen=True)
class RunResult:
    run_id: str
    steps: int                     # the step count reached
    newest: Optional[str]          # the run's newest checkpoint (None before its first save)
    started_from: Optional[str]    # the checkpoint the run started from
    worker: int = 0                # this process's rank; only worker 0 has a run id and files


def run_training(config, dataset_cfg, ctx, checkpoint_spec=None, clear_steps=False, debug=False,
                 max_steps=None, roots_file=None, seed=None, use_wd=False, shard=1,
                 validation_batch=8, weights_dir=checkpoint.WEIGHTS_DIR, logs_dir='logs',
                 log_args=None, tensorboard=True, kvstore='device'):
    """Train ``config`` (a network config) on ``dataset_cfg`` (a dataset config) on devices ``ctx``.

    ``checkpoint_spec``: ``-c`` (``RUN[:STEPS]`` or a .params path) to resume or start from;
    ``clear_steps``: start a new run at step 0 from its weights. ``debug``: the bundled sample
    data (unless ``MASKFLOWNET_DATASETS`` or ``roots_file`` names other roots), a few samples,
    the smallest batch, validating and saving every 2 steps, 4 steps unless ``max_steps``.
    ``log_args``: the options recorded in the run log's header (the command line's).
    ``tensorboard``: also write TensorBoard events to ``logs_dir[/debug]/tensorboard/RUN/``.
    ``kvstore``: one of ``KVSTORES``; a ``dist_*`` one makes this process one worker of the
    job launch.py started, training on its part of every batch (the dataset config's batch is
    the batch of all workers together).
    Writes ``weights_dir/RUN_STEPS.params|.states`` and ``logs_dir[/debug]/RUN.log`` (worker 0).
    """
    if max_steps is not None and max_steps < 1:
        raise UserError('--max_steps %d: must be 1 or more' % max_steps)
    if shard < 1:
        raise UserError('--shard %d: must be 1 or more' % shard)
    roots = dataset_roots.Roots(roots_file)
    if debug and roots_file is None and dataset_roots.ROOTS_FILE_ENV not in os.environ:
        roots = dataset_roots.Roots(dataset_roots.SAMPLE_ROOTS_FILE, environment=False)
    path, run_id, steps = ((None, None, 0) if checkpoint_spec is None
                           else checkpoint.find_checkpoint(checkpoint_spec, weights_dir))
    if seed is not None:
        mx.random.seed(seed)
    data = training_data(dataset_cfg, config.network_class, roots, shard=shard)
    kv, workers = open_kvstore(kvstore)
    if debug:
        data = shrink_for_debug(data, len(ctx) * workers.count)
    pipe = Pipeline(config, ctx)
    schedule = dataset_cfg.optimizer.learning_rate.get(None) or config.optimizer.learning_rate.get(None)
    if schedule is None:
        raise UserError('config %s has no optimizer.learning_rate schedule' % config.source)
    weight_decay = config.optimizer.wd.get(None) if use_wd else None
    if use_wd and weight_decay is None:
        print('warning: --use_wd: config %s sets no optimizer.wd; training without weight decay'
              % config.source, file=sys.stderr)
    check_batch_split(data.batch_size, len(ctx), workers.count)   # before the run leaves any log
    trainer = FlowTrainer(pipe, schedule, weight_decay, kv, workers)
    head_only = False
    if path is not None:
        head_only = pipe.load_start_point(path)
        if config.network_class == 'MaskFlownet':
            pipe.fix_head()
    newest = newest_checkpoint(run_id, weights_dir)
    start = plan_start(path, run_id, steps, newest, clear_steps, head_only)
    if start.load_states:
        trainer.load_states(path[:-len('.params')] + '.states')
    steps = start.steps
    if not workers.lead:
        steps = train(pipe, trainer, data, None, steps, None, weights_dir,
                      **_loop_options(dataset_cfg, debug, max_steps, seed, validation_batch, workers))
        return RunResult(None, steps, None, path, workers.rank)
    run_id = start.run_id or new_run_id(','.join(str(c) for c in ctx))
    if start.branched_from:
        print('%s is not the newest checkpoint of its run: continuing its history as the new '
              'run %s (the later checkpoints stay as they are)' % (path, run_id))
    remove_stale_temporaries(weights_dir)
    record_run(run_id, weights_dir, path)
    log = RunLog(os.path.join(logs_dir, 'debug' if debug else '', '%s.log' % run_id), echo=True,
                 events=tensorboard)
    log_start(log, steps, data, log_args or {}, start.branched_from, workers)
    try:
        steps = train(pipe, trainer, data, run_id, steps, log, weights_dir,
                      **_loop_options(dataset_cfg, debug, max_steps, seed, validation_batch, workers))
    except NonFiniteStep as error:
        newest = newest_checkpoint(run_id, weights_dir)
        raise NonFiniteStep('%s; newest checkpoint %s' % (error, newest or 'none (it started from %s)'
                                                          % path)) from None
    finally:
        log.close()
    return RunResult(run_id, steps, newest_checkpoint(run_id, weights_dir), path)


def _loop_options(dataset_cfg, debug, max_steps, seed, validation_batch, workers):
    """``train``'s options for a run: --debug validates and saves every 2 steps, 4 steps."""
    interval = DEBUG_INTERVAL if debug else None
    if max_steps is None and debug:
        max_steps = DEBUG_STEPS
    return dict(validation_steps=interval or dataset_cfg.validation_steps.get(2500),
                checkpoint_steps=interval or dataset_cfg.checkpoint_steps.get(5000),
                max_steps=max_steps, seed=seed, validation_batch=validation_batch,
                workers=workers)


def record_run(run_id, weights_dir, started_from):
    """Tell launch.py, through the file it names in MASKFLOWNET_RUN_RECORD, which run this is,
    so that it can name the newest checkpoint when the job fails."""
    path = os.environ.get(RUN_RECORD_ENV)
    if path:
        with atomic_output(path) as tmp, open(tmp, 'w') as f:
            json.dump({'run_id': run_id, 'weights_dir': os.path.abspath(weights_dir),
                       'started_from': started_from and os.path.abspath(started_from)}, f)


def newest_checkpoint(run_id, weights_dir=checkpoint.WEIGHTS_DIR):
    """The path of the newest checkpoint of ``run_id`` in ``weights_dir``, or None."""
    mine = [c[2] for c in checkpoint.list_checkpoints(weights_dir) if c[0] == run_id]
    return mine[-1] if mine else None
