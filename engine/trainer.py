"""One optimizer step and its state: Adam on a pipeline's network with the learning-rate
schedule, the non-finite checks before each update, and the ``.states`` file saved beside each
``.params`` checkpoint.
"""
import os
import sys

import numpy as np
import mxnet as mx
from mxnet import autograd, gluon

from common.errors import UserError
from common.files import atomic_outputs
from network import checkpoint
from network.conventions import centralize, flow_yx, full_mask, mask_weights, unit_images

from . import runstate
from .distributed import Workers
from .schedule import check_schedule, learning_rate_at


def check_batch_split(batch_size, devices, workers=1):
    if batch_size % (devices * workers):
        where = '%d devices (-g)' % devices
        if workers > 1:
            where = '%d workers x %s' % (workers, where)
        raise UserError('batch of %d samples cannot be split evenly over %s'
                        % (batch_size, where))


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
        check_schedule(lr_schedule)   # once, now, with a clear error
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
                # and sending it restarts Adam's moments there (see docs/distributed.md).
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

    def save(self, prefix, run_state=None):
        """``prefix.params``, ``prefix.states`` and (given a ``runstate.RunState``)
        ``prefix.run.json``: written together, all or none, each synced before the renames;
        the .params is renamed last (``-c RUN`` picks the newest .params, which must have the
        others)."""
        params = prefix + '.params'
        checkpoint.check_finite(self.pipe.network, params)
        outputs = ([prefix + runstate.SUFFIX] if run_state is not None else []) + [
            prefix + '.states', params]
        with atomic_outputs(*outputs) as tmps:
            if run_state is not None:
                with open(tmps[0], 'w', encoding='utf-8') as f:
                    f.write(run_state.to_json())
            if self.states_on_servers:
                # The local updater: the optimizer and its settings, but no moments (they are
                # on the servers, which cannot hand them back).
                with open(tmps[-2], 'wb') as f:
                    f.write(self.trainer._updaters[0].get_states(dump_optimizer=True))
            else:
                self.trainer.save_states(tmps[-2])
            self.pipe.save(tmps[-1])

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
# error) at MaskFlownet's 270 parameters (docs/guarantees.md, "NaN and infinity").
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
