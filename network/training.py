"""Training: the optimizer and its schedule, one training step, run ids, logs and checkpoints."""
import contextlib
import datetime
import hashlib
import os
import socket
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np
import mxnet as mx
from mxnet import autograd, gluon

from common.files import atomic_output

from . import checkpoint
from .config import learning_rate_at
from common.errors import UserError

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


def check_batch_split(batch_size, devices):
    if batch_size % devices:
        raise UserError('batch of %d samples cannot be split evenly over %d devices (-g)'
                        % (batch_size, devices))


class RunLog:
    """``logs/{run_id}.log``: one ``[YYYY/MM/DD HH:MM:SS] key=value, ...`` line per event."""

    def __init__(self, path, echo=False):
        self.path = path
        self.echo = echo
        try:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            self._file = open(path, 'a')
        except OSError as error:
            raise UserError('%s: cannot write the log (%s)' % (path, error.strerror or error)) from None

    def log(self, message):
        line = datetime.datetime.now().strftime('[%Y/%m/%d %H:%M:%S] ') + message
        self._file.write(line + '\n')
        self._file.flush()
        if self.echo:
            print(line, flush=True)

    def close(self):
        self._file.close()


def format_pairs(pairs):
    return ', '.join('%s=%s' % (k, v) for k, v in pairs)


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

    def __init__(self, pipe, lr_schedule, weight_decay=None):
        self.pipe = pipe
        self.lr_schedule = lr_schedule
        learning_rate_at(lr_schedule, 0)   # validates the schedule now, with a clear error
        self.weight_decay = float(weight_decay or 0)
        self.trainer = gluon.Trainer(pipe.network.collect_params(), 'adam',
                                     {'learning_rate': 1e-4, 'wd': self.weight_decay})
        self.lr = None

    def set_learning_rate(self, steps):
        """Set the rate for ``steps``; False once the schedule has ended (training stops)."""
        lr = learning_rate_at(self.lr_schedule, steps)
        if lr is None:
            return False
        self.trainer.set_learning_rate(lr)
        self.lr = lr
        return True

    def train_batch(self, img1, img2, label, mask=None, geo_aug=None, color_aug=None):
        """One optimizer step on a batch (uint8 NCHW images, (x, y) NCHW flow, 0/255 mask)."""
        ctx = self.pipe.ctx
        batch_size = img1.shape[0]
        check_batch_split(batch_size, len(ctx))
        if mask is None:
            mask = np.full((batch_size, 1) + label.shape[2:], 255, dtype=np.uint8)
        parts = [gluon.utils.split_and_load(x, ctx) for x in (img1, img2, label, mask)]
        losses, epes = [], []
        with autograd.record():
            for img1s, img2s, labels, masks in zip(*parts):
                img1s, img2s, masks = img1s / 255.0, img2s / 255.0, masks / 255.0
                labels = labels.astype('float32', copy=False)
                if geo_aug is not None:
                    img1s, img2s, labels, masks = geo_aug(img1s, img2s, labels, masks)
                if color_aug is not None:
                    img1s, img2s = color_aug(img1s, img2s)
                img1s, img2s, _ = self.pipe.centralize(img1s, img2s)
                predictions, _, _ = self.pipe.network(img1s, img2s)
                # Labels are (x, y) on disk and through augmentation; the network is (y, x).
                labels = mx.nd.flip(labels, axis=1)
                losses.append(self.pipe.loss(predictions, labels, masks))
                epes.append(self.pipe.epe_with_mask(self.pipe.upsampler(predictions[-1]), labels, masks))
        for loss in losses:
            loss.backward()
        self._check_finite(losses)
        self.trainer.step(batch_size)
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

    # --- checkpoints ---------------------------------------------------------------------

    def save(self, prefix):
        """``prefix.params`` and ``prefix.states``, each written atomically, or neither."""
        checkpoint.check_finite(self.pipe.network, prefix + '.params')
        # .states first: -c RUN picks the newest .params, which must have its .states.
        with atomic_output(prefix + '.states') as tmp:
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
        try:
            self.trainer.load_states(path)
        except Exception as error:   # pickle and MXNet errors alike: a bad or foreign file
            raise UserError('optimizer state %s: cannot be read (%s)' % (path, error)) from None
        # The states file holds the saving run's optimizer, weight decay included.
        self.trainer._optimizer.wd = self.weight_decay


def all_finite(arrays):
    """Whether every value of the NDArrays (on any devices) is finite."""
    by_device = {}
    for array in arrays:
        by_device.setdefault(array.context, []).append(array)
    return all(mx.nd.multi_all_finite(*group, num_arrays=len(group)).asscalar() == 1
               for group in by_device.values())


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
