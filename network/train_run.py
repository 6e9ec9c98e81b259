"""One training run of the paper's schedule: data per dataset config, the loop, validation.

``main.py`` parses arguments, builds the pipeline and calls ``training_data`` and ``train``.
"""
import math
import os
import socket
import sys
import time
from dataclasses import dataclass, field

from reader import chairs, hd1k, kitti, roots, sintel, things3d
from reader.loader import BatchStream
from reader.sample import load_sample

from . import checkpoint
from .augmentation import make_augmentations
from common.errors import UserError
from .evaluate import evaluate_samples
from .training import LOG_EVERY, MovingAverage, NonFiniteStep, format_pairs, prune_checkpoints

DEBUG_SAMPLES = 32   # --debug reads at most this many samples of each list, as the original
KITTI_CROP = (370, 1224)   # the smallest KITTI frame: full-resolution validation crop


@dataclass
class TrainingData:
    """What a dataset config asks for: the per-batch mix, crop shapes and validation sets."""
    dataset: str
    mix: list                      # [(samples, count)]: count samples of each list per batch
    orig_shape: tuple              # random crop taken from each sample (H, W)
    target_shape: tuple            # network input after geometric augmentation (H, W)
    validation: dict = field(default_factory=dict)   # name -> samples
    skipped: list = field(default_factory=list)      # dataset keys whose validation is skipped

    @property
    def batch_size(self):
        return sum(count for _, count in self.mix)

    @property
    def train_size(self):
        return sum(len(samples) for samples, _ in self.mix)

    @property
    def validation_size(self):
        return sum(len(samples) for samples in self.validation.values())


def _sintel_validation(root, network_class, split=None):
    # The original validated MaskFlownet on the held-out split only, MaskFlownet-S on all.
    split = split or ('training2' if network_class == 'MaskFlownet' else 'training')
    return {'sintel.' + name: samples
            for name, samples in sintel.by_pass(sintel.list_samples(root, split)).items()}


def training_data(dataset_cfg, network_class, roots_file=None, shard=1):
    """The original main.py's data setup for ``dataset_cfg.dataset``, as sample lists.

    ``shard=N`` trains on every N-th FlyingThings3D sample, as the original's ``--shard``
    (there to fit the data in RAM; streaming needs no sharding).
    """
    if not dataset_cfg.dataset.present:
        raise UserError('%s is not a dataset config: it has no `dataset:` key (chairs, things3d, '
                        'sintel or kitti)' % dataset_cfg.source)
    name = dataset_cfg.dataset.value
    train_all = dataset_cfg.train_all.get(False)
    if name == 'chairs':
        root = roots.dataset_root('chairs', roots_file)
        data = TrainingData(name, [(chairs.list_samples(root, 'train'), 8)], (384, 512), None)
        data.validation['chairs'] = chairs.list_samples(root, 'val')
        if _optional(data, 'sintel', roots_file):
            data.validation.update(_sintel_validation(roots.dataset_root('sintel', roots_file), network_class))
    elif name == 'things3d':
        samples = things3d.list_samples(roots.dataset_root('things3d', roots_file),
                                        sub_type=dataset_cfg.sub_type.get('clean'),
                                        parts=_things3d_parts(dataset_cfg),
                                        shard=(0, shard) if shard > 1 else None)
        data = TrainingData(name, [(samples, 4)], (540, 960), None)
        if _optional(data, 'chairs', roots_file):
            data.validation['chairs'] = chairs.list_samples(roots.dataset_root('chairs', roots_file), 'val')
        for edition in ('2012', '2015'):
            if _optional(data, 'kitti' + edition, roots_file):
                data.validation['kitti.' + edition] = kitti.list_samples(
                    roots.dataset_root('kitti' + edition, roots_file), edition, 'mixed', crop=KITTI_CROP)
        if _optional(data, 'sintel', roots_file):
            data.validation.update(_sintel_validation(roots.dataset_root('sintel', roots_file), network_class))
    elif name == 'sintel':
        root = roots.dataset_root('sintel', roots_file)
        num_kitti, num_hd1k = dataset_cfg.kitti.get(0), dataset_cfg.hd1k.get(0)
        if num_kitti + num_hd1k >= 4:
            raise UserError('dataset config %s: kitti + hd1k must leave room for Sintel in a '
                            'batch of 4' % dataset_cfg.source)
        train = sintel.list_samples(root, 'training' if train_all else 'training1')
        data = TrainingData(name, [(train, 4 - num_kitti - num_hd1k)], (436, 1024), None)
        resize_hw = (dataset_cfg.resize_shape.get(436), 1024)
        if num_kitti:
            data.mix.append((kitti.list_samples(roots.dataset_root('kitti2015', roots_file), '2015', 'mixed',
                                                resize_hw=resize_hw), num_kitti))
        if num_hd1k:
            data.mix.append((hd1k.list_samples(roots.dataset_root('hd1k', roots_file), 'mixed',
                                               resize_hw=resize_hw), num_hd1k))
        data.validation.update(_sintel_validation(root, network_class, 'training2'))
    elif name == 'kitti':
        orig_shape = tuple(dataset_cfg.orig_shape.get(list(KITTI_CROP)))
        part = 'mixed' if train_all else 'train'
        train = []
        for edition in ('2012', '2015'):
            train += kitti.list_samples(roots.dataset_root('kitti' + edition, roots_file), edition, part,
                                        resize_hw=orig_shape)
        data = TrainingData(name, [(train, 4)], orig_shape, None)
        for edition, key in (('2012', 'kitti.12'), ('2015', 'kitti.15')):
            data.validation[key] = kitti.list_samples(roots.dataset_root('kitti' + edition, roots_file),
                                                      edition, 'valid', resize_hw=orig_shape)
    else:
        raise UserError('dataset config %s: unknown dataset %r (chairs, things3d, sintel, kitti)'
                        % (dataset_cfg.source, name))
    data.orig_shape = _shape(dataset_cfg, 'orig_shape', list(data.orig_shape))
    default_target = [s + (64 - s) % 64 for s in data.orig_shape]
    data.target_shape = _shape(dataset_cfg, 'target_shape', default_target, multiple=64)
    return data


def _optional(data, key, roots_file):
    """Whether the optional validation dataset ``key`` is configured; if not, note it skipped."""
    if roots.configured(key, roots_file):
        return True
    data.skipped.append(key)
    return False


def _things3d_parts(dataset_cfg):
    """``parts:`` of a things3d config: ['train'] by default, as the original trained."""
    parts = dataset_cfg.parts.get(['train'])
    if (not isinstance(parts, list) or not parts
            or any(not isinstance(p, str) or p not in things3d.PARTS for p in parts)):
        raise UserError('dataset config %s: parts must be a list of %s; got %r'
                        % (dataset_cfg.source, ' and '.join(things3d.PARTS), parts))
    return tuple(parts)


def _shape(dataset_cfg, key, default, multiple=1):
    """A dataset config's [H, W] entry, checked: two positive integers (multiples of ``multiple``)."""
    value = dataset_cfg[key].get(default)
    ok = (isinstance(value, (list, tuple)) and len(value) == 2
          and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 and v % multiple == 0
                  for v in value))
    if not ok:
        raise UserError('dataset config %s: %s must be [H, W], two positive integers%s; got %r'
                        % (dataset_cfg.source, key,
                           ' that are multiples of %d' % multiple if multiple > 1 else '', value))
    return tuple(value)


def shrink_for_debug(data, devices):
    """--debug: a few samples of each list and the smallest batch the devices allow."""
    per_device = math.lcm(len(data.mix), devices) // devices
    data.mix = [(samples[:DEBUG_SAMPLES], per_device * devices // len(data.mix))
                for samples, _ in data.mix]
    data.validation = {k: v[:DEBUG_SAMPLES] for k, v in data.validation.items()}
    return data


def make_stream(data, seed=None):
    slots = [(samples, load_sample) for samples, count in data.mix for _ in range(count)]
    return BatchStream(slots, data.batch_size, data.orig_shape, seed=seed)


def validate_all(pipe, validation, batch_size=1):
    results = {}
    for name, samples in validation.items():
        if samples:
            results[name] = evaluate_samples(pipe, samples, batch_size, description=name)['epe']
    return results


def train(pipe, trainer, data, run_id, steps, log, weights_dir=checkpoint.WEIGHTS_DIR,
          validation_steps=2500, checkpoint_steps=5000, max_steps=None, seed=None,
          validation_batch=1):
    """The training loop; returns the step count reached.

    Stops when the learning-rate schedule ends, or after ``max_steps`` more steps. Validates
    every ``validation_steps`` (and after the first step), saves every ``checkpoint_steps`` and
    keeps the newest three checkpoints of the run.
    """
    geo_aug, color_aug = make_augmentations(data.dataset, data.target_shape, data.orig_shape,
                                            data.batch_size // len(pipe.ctx))
    train_epe, total_time = MovingAverage(), MovingAverage()
    stop_at = None if max_steps is None else steps + max_steps
    last = None
    with make_stream(data, seed) as stream:
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
                log.log('stopped=%s' % message)
                raise NonFiniteStep(message) from None
            if steps <= 20 or steps % LOG_EVERY == 0:
                train_epe.update(result['epe'])
                log.log('steps=%d, epe=%s, total_time=%.2f' % (steps, train_epe.average,
                                                                total_time.average))
            if steps % validation_steps == 0 or steps <= 1:
                results = validate_all(pipe, data.validation, validation_batch)
                if results:
                    log.log('steps=%d, %s' % (steps, format_pairs(results.items())))
            # A run stopped by max_steps also saves, so that it can be resumed where it stopped.
            if steps % checkpoint_steps == 0 or steps == stop_at:
                trainer.save(os.path.join(weights_dir, '%s_%d' % (run_id, steps)))
                prune_checkpoints(run_id, weights_dir)
    return steps


def log_start(log, steps, data, batch_args, branched_from=None):
    log.log('start=%d, train=%d, val=%d, host=%s, batch=%d'
            % (steps, data.train_size, data.validation_size, socket.gethostname(), data.batch_size))
    log.log(format_pairs((k, repr(v)) for k, v in batch_args.items()))
    if branched_from:
        log.log('branched_from=%s' % branched_from)
    for key in data.skipped:
        print('validation: %s' % roots.skip_note(key))
    sys.stdout.flush()
