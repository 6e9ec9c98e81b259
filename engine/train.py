"""Training: a run of the paper's schedule (``run_training``), in two parts: ``prepare_run``
builds and checks everything (data, network, optimizer, where the run starts) and writes
nothing; ``run`` writes the log and trains. ``train`` is the loop itself.

A run may be one of several worker processes of MXNet's parameter-server kvstore
(``--kvstore dist_*``, started by ``launch.py``): each reads its part of every batch, and
worker 0 alone logs, validates and saves.
"""
import contextlib
import os
import secrets
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import Optional

import mxnet as mx

from common.cli import Terminated
from common.errors import UserError
from common.files import prove_writable, remove_stale_temporaries, same_file
from common.options import MAX_SEED
from network import checkpoint
from network.augmentation import make_augmentations
from network.pipeline import Pipeline
from reader import roots as dataset_roots
from reader.crop import random_crop_and_flip
from reader.loader import BatchStream
from reader.mixes import shrink_for_debug, training_data
from reader.sample import check_sets, load_sample
from tracking.events import EventSink
from tracking.logformat import MovingAverage, format_pairs
from tracking.progress import TrainingProgress
from tracking.runlog import RunLog, events_folder

from . import published, runs, runstate
from .distributed import Workers, augmentation_seed, open_kvstore, shared_seed
from .evaluate import example_prediction, validate_sets, validation_lines
from .failures import memory_guard
from .trainer import FlowTrainer, NonFiniteStep, check_batch_split

LOG_EVERY = 50           # after the first 20 steps, as the original
_NO_TERMINAL = object()  # the progress stream of workers other than 0: never a terminal
DEBUG_STEPS = 4          # --debug: steps per invocation
DEBUG_INTERVAL = 2       # --debug: validate and save every this many steps


@dataclass(frozen=True)
class RunOptions:
    """What a training run is asked to do (``main.py``'s options).

    ``checkpoint``: ``-c`` (``RUN[:STEPS]`` or a .params path) to resume or start from;
    ``clear_steps``: start a new run at step 0 from its weights. ``debug``: the bundled sample
    data (unless ``MASKFLOWNET_DATASETS`` or ``roots_file`` names other roots), a few samples,
    the smallest batch, validating and saving every 2 steps, 4 steps unless ``max_steps``.
    ``kvstore``: one of ``distributed.KVSTORES``; a ``dist_*`` one makes this process one
    worker of the job launch.py started, training on its part of every batch (the dataset
    config's batch is the batch of all workers together). ``tensorboard``: also write events
    to ``logs_dir[/debug]/tensorboard/RUN/``. ``log_args``: the options recorded in the run
    log's header (the command line's).
    """
    checkpoint: Optional[str] = None
    clear_steps: bool = False
    debug: bool = False
    max_steps: Optional[int] = None
    seed: Optional[int] = None
    use_wd: bool = False
    shard: int = 1
    validation_batch: int = 8
    kvstore: str = 'device'
    tensorboard: bool = True
    roots_file: Optional[str] = None
    weights_dir: str = runs.WEIGHTS_DIR
    logs_dir: str = 'logs'
    log_args: dict = field(default_factory=dict)


@dataclass(frozen=True)
class LoopSettings:
    """How often the loop validates and saves, and when it stops; the run's seed."""
    validation_steps: int = 2500
    checkpoint_steps: int = 5000
    max_steps: Optional[int] = None      # more steps in this invocation; None: to the schedule's end
    seed: int = 0
    validation_batch: int = 1


@dataclass(frozen=True)
class RunResult:
    run_id: str
    steps: int                     # the step count reached
    newest: Optional[str]          # the run's newest checkpoint (None before its first save)
    started_from: Optional[str]    # the checkpoint the run started from
    worker: int = 0                # this process's rank; only worker 0 has a run id and files


@dataclass
class PreparedRun:
    """A run with everything built and checked, and nothing written yet."""
    options: RunOptions
    pipe: Pipeline
    trainer: FlowTrainer
    data: object                   # reader.mixes.TrainingData
    workers: Workers
    start: runs.RunStart
    started_from: Optional[str]    # the checkpoint -c named
    loop: LoopSettings
    device_desc: str
    averages: tuple                # the log's moving averages (training EPE, step time)


def loop_settings(dataset_cfg, options, seed):
    """``train``'s settings for a run: --debug validates and saves every 2 steps, 4 steps."""
    interval = DEBUG_INTERVAL if options.debug else None
    max_steps = options.max_steps
    if max_steps is None and options.debug:
        max_steps = DEBUG_STEPS
    return LoopSettings(validation_steps=interval or dataset_cfg.validation_steps.get(2500),
                        checkpoint_steps=interval or dataset_cfg.checkpoint_steps.get(5000),
                        max_steps=max_steps, seed=seed,
                        validation_batch=options.validation_batch)


def draw_seed():
    """A run's seed when --seed does not give one: recorded in its log and checkpoints, so that
    it can be resumed exactly and run again identically."""
    return secrets.randbelow(MAX_SEED + 1)



def _roots(options):
    if (options.debug and options.roots_file is None
            and dataset_roots.ROOTS_FILE_ENV not in os.environ):
        return dataset_roots.Roots(dataset_roots.SAMPLE_ROOTS_FILE, environment=False)
    return dataset_roots.Roots(options.roots_file)


def prepare_run(config, dataset_cfg, ctx, options=RunOptions()):
    """Build and check everything ``options`` asks of a run of ``config`` (a network config)
    on ``dataset_cfg`` (a dataset config) on devices ``ctx``; nothing is written."""
    if options.max_steps is not None and options.max_steps < 1:
        raise UserError('--max_steps %d: must be 1 or more' % options.max_steps)
    if options.shard < 1:
        raise UserError('--shard %d: must be 1 or more' % options.shard)
    path, run_id, steps = ((None, None, 0) if options.checkpoint is None
                           else runs.find_checkpoint(options.checkpoint, options.weights_dir))
    arrays, head_only = None, False
    if path is not None:
        arrays = checkpoint.read_checkpoint(path)
        # A MaskFlownet-S checkpoint starts MaskFlownet's second stage: a new run.
        head_only = (config.network_class == 'MaskFlownet'
                     and checkpoint.guess_network(arrays) == 'MaskFlownet_S')
    saved = (runstate.read_state(path, steps if run_id else None)
             if path is not None and not options.clear_steps and not head_only else None)
    data = training_data(dataset_cfg, config.network_class, _roots(options), shard=options.shard)
    kv, workers = open_kvstore(options.kvstore)
    # The run's seed: given, or the resumed run's own, or drawn (by worker 0 for a job). It
    # seeds the initial weights here, the data stream and every step's augmentation.
    seed = next(s for s in (options.seed, saved and saved.seed, draw_seed()) if s is not None)
    seed = shared_seed(kv, workers, seed)
    mx.random.seed(seed)
    if options.debug:
        data = shrink_for_debug(data, len(ctx) * workers.count)
    if workers.lead:   # the files of validations hours in: there, complete, of one size
        check_sets(data.validation)
    pipe = Pipeline(config, ctx)
    schedule = (dataset_cfg.optimizer.learning_rate.get(None)
                or config.optimizer.learning_rate.get(None))
    if schedule is None:
        raise UserError('config %s has no optimizer.learning_rate schedule' % config.source)
    weight_decay = config.optimizer.wd.get(None) if options.use_wd else None
    if options.use_wd and weight_decay is None:
        print('warning: --use_wd: config %s sets no optimizer.wd; training without weight decay'
              % config.source, file=sys.stderr)
    check_batch_split(data.batch_size, len(ctx), workers.count)   # before the run leaves any log
    trainer = FlowTrainer(pipe, schedule, weight_decay, kv, workers)
    if path is not None:
        with published.config_hints():
            pipe.load_start_point(path, arrays)
        if config.network_class == 'MaskFlownet':
            pipe.fix_head()
    start = runs.plan_start(path, run_id, steps, runs.newest_checkpoint(run_id, options.weights_dir),
                            options.clear_steps, head_only)
    averages = (MovingAverage(), MovingAverage())
    if start.load_states:
        trainer.load_states(runs.states_path(path))
        for note in runstate.resume_notes(saved, data, workers.count, options.seed, path,
                                          runstate.devices_of(ctx), workers.kvstore,
                                          trainer.weight_decay):
            print('note: %s' % note, file=sys.stderr)
        if saved is not None:
            for average, (total, weight) in zip(averages, (saved.train_epe, saved.step_time)):
                average.total, average.weight = total, weight
    return PreparedRun(options, pipe, trainer, data, workers, start, path,
                       loop_settings(dataset_cfg, options, seed), ','.join(str(c) for c in ctx),
                       averages)


def run(prepared):
    """Train a prepared run: worker 0 logs, validates and saves under a run id that it owns
    (one process per run); returns a RunResult.

    The folders the run writes are created and proven writable before the first step. The log
    holds its lines until the first step has succeeded, so a run that fails before it started
    leaves no log (and a resumed run's log unchanged); one that stops for any reason after
    that ends its log with ``stopped=<why>``.
    """
    p, options = prepared, prepared.options
    if not p.workers.lead:
        steps = train(p.pipe, p.trainer, p.data, None, p.start.steps, None, options.weights_dir,
                      p.loop, p.workers, p.averages)
        return RunResult(None, steps, None, p.started_from, p.workers.rank)
    run_id = p.start.run_id or runs.unused_run_id(
        p.device_desc, options.weights_dir, lambda candidate: _log_path(options, candidate))
    log_path = _log_path(options, run_id)
    prove_writable(options.weights_dir)
    prove_writable(os.path.dirname(os.path.abspath(log_path)))
    with runs.own_run(run_id, options.weights_dir):
        # Planned before the lock was ours: the run may have gone on since (its owner saved
        # again before it ended). Resuming from what is now an older checkpoint would overwrite
        # the later ones.
        newest = runs.newest_checkpoint(run_id, options.weights_dir) if p.start.run_id else None
        if newest is not None and not same_file(newest, p.started_from):
            raise UserError('run %s went on while this process started (its newest checkpoint '
                            'is now %s); resume again with -c %s' % (run_id, newest, run_id))
        if p.start.branched_from:
            print('%s is not the newest checkpoint of its run: continuing its history as the '
                  'new run %s (the later checkpoints stay as they are)' % (p.started_from, run_id))
        remove_stale_temporaries(options.weights_dir)
        runs.record_run(run_id, options.weights_dir, p.started_from)
        sinks = [EventSink(events_folder(log_path))] if options.tensorboard else []
        log = RunLog(log_path, echo=True, sinks=sinks, hold=True)
        # The options line records the run's seed, also when it was drawn.
        log_args = dict(options.log_args, seed=p.loop.seed)
        log_start(log, p.start.steps, p.data, log_args, p.start.branched_from, p.workers)
        try:
            steps = train(p.pipe, p.trainer, p.data, run_id, p.start.steps, log,
                          options.weights_dir, p.loop, p.workers, p.averages)
        except BaseException as error:
            if log.released:
                log.log('stopped=%s' % stop_reason(error))
            if isinstance(error, NonFiniteStep):
                newest = runs.newest_checkpoint(run_id, options.weights_dir)
                raise NonFiniteStep('%s; newest checkpoint %s' % (
                    error, newest or 'none (it started from %s)' % p.started_from)) from None
            raise
        finally:
            log.close()
    return RunResult(run_id, steps, runs.newest_checkpoint(run_id, options.weights_dir),
                     p.started_from)


def _log_path(options, run_id):
    return os.path.join(options.logs_dir, 'debug' if options.debug else '', '%s.log' % run_id)


def stop_reason(error):
    """What the run log's last line says of an error that stopped a run."""
    if isinstance(error, Terminated):
        return 'terminated (%s)' % error.signal.name
    if isinstance(error, KeyboardInterrupt):
        return 'interrupted (Ctrl-C)'
    if isinstance(error, UserError):
        return ' '.join(str(error).split())
    return '%s: %s' % (type(error).__name__, ' '.join(str(error).split())[-300:])


def run_training(config, dataset_cfg, ctx, options=RunOptions()):
    """Train ``config`` on ``dataset_cfg`` on devices ``ctx`` as ``options`` say.

    Writes ``weights_dir/RUN_STEPS.params|.states`` and ``logs_dir[/debug]/RUN.log`` (worker 0).
    """
    return run(prepare_run(config, dataset_cfg, ctx, options))


# --- the loop ------------------------------------------------------------------------------

def make_stream(data, seed, workers=Workers(), start=0):
    """This worker's part of each batch, from batch ``start`` on (the batches read before a
    resume); one slot per sample position, so a part is a slice."""
    slots = [(samples, load_sample) for samples, count in data.mix for _ in range(count)]
    crop_shape = data.orig_shape
    return BatchStream(slots, data.batch_size,
                       lambda example, rng, name: random_crop_and_flip(example, crop_shape, rng, name),
                       seed=seed, part=(workers.rank, workers.count), start=start)


def train(pipe, trainer, data, run_id, steps, log, weights_dir=runs.WEIGHTS_DIR,
          loop=LoopSettings(), workers=Workers(), averages=None):
    """The training loop; returns the step count reached.

    Stops when the learning-rate schedule ends, or after ``loop.max_steps`` more steps.
    Validates every ``loop.validation_steps`` (and after the first step), saves every
    ``loop.checkpoint_steps`` and keeps the newest three checkpoints of the run. Workers other
    than 0 (``log`` None there) only train.

    Step ``n`` reads the stream's batch ``n`` and seeds the network-side augmentation from
    (seed, worker, n): what a step does depends on the run's seed and the step, not on how
    the run got there, so a resumed run repeats the uninterrupted one exactly.
    ``averages``: the log's moving averages to go on from (a resumed run's).
    """
    # a custom dataset config picks whose augmentation ranges it trains with
    geo_aug, color_aug = make_augmentations(data.augmentation or data.dataset, data.target_shape,
                                            data.orig_shape,
                                            data.batch_size // (len(pipe.ctx) * workers.count))
    train_epe, total_time = averages or (MovingAverage(), MovingAverage())
    fingerprint = runstate.data_fingerprint(data)   # of every checkpoint's run state
    stop_at = None if loop.max_steps is None else steps + loop.max_steps
    last = None
    # the live line on a terminal (worker 0 only); nothing at all otherwise
    end = trainer.lr_schedule[-1][0]
    progress = TrainingProgress(steps, end if stop_at is None else min(end, stop_at),
                                loop.validation_steps, loop.checkpoint_steps,
                                stream=None if workers.lead else _NO_TERMINAL)
    with make_stream(data, loop.seed, workers, start=steps) as stream, \
            contextlib.closing(progress):
        while stop_at is None or steps < stop_at:
            if not trainer.set_learning_rate(steps + 1):
                break
            steps += 1
            now = time.perf_counter()
            if last is not None:
                total_time.update(now - last)
            last = now
            batch = next(stream)
            mx.random.seed(augmentation_seed(loop.seed, workers.rank, steps))
            try:
                with memory_guard('training step %d (a batch of %d at %dx%d)' % (
                        steps, len(batch.names), *data.target_shape[::-1]),
                        'the batch or the crop (target_shape) in the dataset config'):
                    result = trainer.train_batch(batch.img1, batch.img2, batch.flow, batch.mask,
                                                 geo_aug=geo_aug, color_aug=color_aug)
            except NonFiniteStep as error:
                raise NonFiniteStep('step %d: %s on samples %s; the weights were not updated and '
                                    'no checkpoint was written' % (steps, error,
                                                                   ', '.join(batch.names))) from None
            if not workers.lead:
                continue
            log.release()   # the run has started: its log is written from here on
            step_seconds = time.perf_counter() - now
            if steps <= 20 or steps % LOG_EVERY == 0:
                train_epe.update(result['epe'])
                progress.clear()
                log.log('steps=%d, epe=%s, total_time=%.2f' % (steps, train_epe.average,
                                                                total_time.average))
                log.learning_rate(steps, trainer.lr)
            if steps % loop.validation_steps == 0 or steps <= 1:
                progress.clear()
                started = time.perf_counter()
                pipe.release_graph_memory()   # each graph's memory, not both at once
                with memory_guard('validating at step %d' % steps, '--batch'):
                    results = validate_sets(pipe, data.validation, loop.validation_batch)
                if results:
                    for line in validation_lines(steps, results):
                        log.log(line)
                    log.validation_images(steps, lambda: example_prediction(pipe, data.validation))
                pipe.release_graph_memory()
                progress.validation_took(time.perf_counter() - started)
            # A run stopped by max_steps also saves, so that it can be resumed where it stopped.
            if steps % loop.checkpoint_steps == 0 or steps == stop_at:
                state = runstate.RunState(
                    seed=loop.seed, steps=steps, train_epe=[train_epe.total, train_epe.weight],
                    step_time=[total_time.total, total_time.weight],
                    data=fingerprint, workers=workers.count,
                    devices=runstate.devices_of(pipe.ctx), kvstore=workers.kvstore,
                    weight_decay=trainer.weight_decay)
                trainer.save(os.path.join(weights_dir, '%s_%d' % (run_id, steps)), state)
                runs.prune_checkpoints(run_id, weights_dir)
            progress.step(steps, step_seconds, result['epe'], trainer.lr)
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
