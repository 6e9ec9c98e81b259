"""What each dataset config trains and validates on: one table, ``MIXES``.

A dataset config's ``dataset:`` (chairs, things3d, sintel, kitti) picks a row: the crop taken
from every training sample (``orig_shape``, which the config may override), the batch slots
(which samples, how many of each per batch) and the validation sets. The numbers are the
original main.py's. A config's own keys fill in the options of a row (``kitti``, ``hd1k``,
``train_all``, ``sub_type``, ``parts``, ``resize_shape``, ``orig_shape``, ``target_shape``).

``dataset: custom`` has no row but a handler beside the table (``HANDLERS``): its samples,
batch, crop and validation set come from the config's own list files (``reader.custom``).
"""
import math
import os
from dataclasses import dataclass, field
from typing import Callable, Optional, Tuple

from common.errors import UserError
from pathlib import Path

from reader import chairs, custom, hd1k, kitti, sintel, things3d
from reader.roots import Roots

KITTI_CROP = (370, 1224)   # the smallest KITTI frame: full-resolution validation crop
DEBUG_SAMPLES = 32         # --debug reads at most this many samples of each list, as the original


@dataclass(frozen=True)
class Slot:
    """Samples of one dataset in each batch: ``count(options)`` of ``lister(roots, options)``."""
    lister: Callable               # (roots, options) -> [Sample]
    count: Callable                # options -> samples per batch


@dataclass(frozen=True)
class Validation:
    """Validation sets of one dataset: ``lister(roots, options)`` -> {name: [Sample]}."""
    key: str
    lister: Callable
    optional: bool = False         # skipped, with one line, when its root is not configured


@dataclass(frozen=True)
class Mix:
    orig_shape: Tuple[int, int]
    slots: Tuple[Slot, ...]
    validation: Tuple[Validation, ...]


@dataclass(frozen=True)
class MixOptions:
    """The keys of a dataset config that a row reads, and the network being trained."""
    network_class: str
    train_all: bool = False
    sub_type: str = 'clean'
    parts: Tuple[str, ...] = ('train',)
    shard: int = 1
    kitti: int = 0
    hd1k: int = 0
    resize_shape: int = 436
    orig_shape: Optional[Tuple[int, int]] = None


def _sintel_validation(split):
    def listing(roots, options):
        # The original validated MaskFlownet on the held-out split only, MaskFlownet-S on all.
        chosen = split or ('training2' if options.network_class == 'MaskFlownet' else 'training')
        return {'sintel.' + name: samples for name, samples in
                sintel.by_pass(sintel.list_samples(roots.root('sintel'), chosen)).items()}
    return listing


def _kitti_full_frames(edition):
    """KITTI validation at full resolution: every frame cropped to the smallest frame."""
    return lambda roots, options: {'kitti.' + edition: kitti.list_samples(
        roots.root('kitti' + edition), edition, 'mixed', crop=KITTI_CROP)}


def _kitti_valid(edition, name):
    """KITTI fine-tuning's held-out pairs, resized like its training pairs (``orig_shape``)."""
    return lambda roots, options: {name: kitti.list_samples(
        roots.root('kitti' + edition), edition, 'valid', resize_hw=options.orig_shape)}


def _sintel_train(roots, options):
    return sintel.list_samples(roots.root('sintel'), 'training' if options.train_all else 'training1')


def _sintel_mix_resize(options):
    return (options.resize_shape, 1024)


def _kitti_train(roots, options):
    part = 'mixed' if options.train_all else 'train'
    return [s for edition in ('2012', '2015')
            for s in kitti.list_samples(roots.root('kitti' + edition), edition, part,
                                        resize_hw=options.orig_shape)]


def _things3d_train(roots, options):
    shard = (0, options.shard) if options.shard > 1 else None
    return things3d.list_samples(roots.root('things3d'), sub_type=options.sub_type,
                                 parts=options.parts, shard=shard)


def _chairs_val(roots, options):
    return {'chairs': chairs.list_samples(roots.root('chairs'), 'val')}


MIXES = {
    'chairs': Mix(
        orig_shape=(384, 512),
        slots=(Slot(lambda r, o: chairs.list_samples(r.root('chairs'), 'train'), lambda o: 8),),
        validation=(Validation('chairs', _chairs_val),
                    Validation('sintel', _sintel_validation(None), optional=True))),
    'things3d': Mix(
        orig_shape=(540, 960),
        slots=(Slot(_things3d_train, lambda o: 4),),
        validation=(Validation('chairs', _chairs_val, optional=True),
                    Validation('kitti2012', _kitti_full_frames('2012'), optional=True),
                    Validation('kitti2015', _kitti_full_frames('2015'), optional=True),
                    Validation('sintel', _sintel_validation(None), optional=True))),
    'sintel': Mix(
        orig_shape=(436, 1024),
        slots=(Slot(_sintel_train, lambda o: 4 - o.kitti - o.hd1k),
               Slot(lambda r, o: kitti.list_samples(
                   r.root('kitti2015'), '2015', 'mixed', resize_hw=_sintel_mix_resize(o)), lambda o: o.kitti),
               Slot(lambda r, o: hd1k.list_samples(
                   r.root('hd1k'), 'mixed', resize_hw=_sintel_mix_resize(o)), lambda o: o.hd1k)),
        validation=(Validation('sintel', _sintel_validation('training2')),)),
    'kitti': Mix(
        orig_shape=KITTI_CROP,
        slots=(Slot(_kitti_train, lambda o: 4),),
        validation=(Validation('kitti2012', _kitti_valid('2012', 'kitti.12')),
                    Validation('kitti2015', _kitti_valid('2015', 'kitti.15')))),
}


def config_relative(dataset_cfg, path):
    """A path in a dataset config: relative to the config file's folder, ``~`` expanded."""
    path = Path(os.path.expanduser(path))
    if path.is_absolute() or dataset_cfg.source is None:
        return path
    return Path(dataset_cfg.source).parent / path


def custom_validation(dataset_cfg, progress=True, whole=True):
    """The checked ``validation_list`` of a custom dataset config (a ``reader.custom.CustomList``):
    what ``--valid`` validates on with that config. ``whole=False``: its images are not read in
    full here (training's ``sample.check_sets`` does that for every validation set)."""
    listed = dataset_cfg.validation_list.get(None)
    if listed is None:
        raise UserError('%s: validation_list: missing: --valid with a custom dataset config '
                        'validates on its validation_list' % dataset_cfg.source)
    return custom.list_samples(config_relative(dataset_cfg, listed), progress=progress,
                               whole=whole)


def _custom_training_data(dataset_cfg, network_class):
    """``dataset: custom``: ``batch_size`` samples of ``train_list`` a step, cropped to
    ``orig_shape`` (by default the smallest frame of the list), validated on
    ``validation_list`` (if given) under the key ``custom.<its stem>``."""
    train_list = dataset_cfg.train_list.get(None)
    if train_list is None:
        raise UserError('%s: train_list: missing: training needs a train_list (--valid needs '
                        'only validation_list)' % dataset_cfg.source)
    crop = dataset_cfg.orig_shape.get(None)
    train = custom.list_samples(config_relative(dataset_cfg, train_list), crop=crop)
    orig_shape = tuple(crop or train.smallest)
    if min(orig_shape) < 2:   # as the schema refuses for orig_shape: nothing to crop
        raise UserError('%s: its smallest frame is %dx%d; training needs frames of 2 pixels or '
                        'more a side' % (train.path, orig_shape[1], orig_shape[0]))
    validation = {}
    if dataset_cfg.validation_list.get(None) is not None:
        listed = custom_validation(dataset_cfg, whole=False)   # read in full by check_sets
        validation[listed.key] = listed.samples
    default_target = [s + (64 - s) % 64 for s in orig_shape]
    return TrainingData('custom', [(train.samples, dataset_cfg.batch_size.get(4))], orig_shape,
                        tuple(dataset_cfg.target_shape.get(None) or default_target), validation,
                        augmentation=dataset_cfg.augmentation.get('chairs'))


HANDLERS = {'custom': _custom_training_data}


@dataclass
class TrainingData:
    """What a dataset config asks for: the per-batch mix, crop shapes and validation sets."""
    dataset: str
    mix: list                      # [(samples, count)]: count samples of each list per batch
    orig_shape: tuple              # random crop taken from each sample (H, W)
    target_shape: tuple            # network input after geometric augmentation (H, W)
    validation: dict = field(default_factory=dict)   # name -> samples
    skipped: list = field(default_factory=list)      # dataset keys whose validation is skipped
    augmentation: Optional[str] = None   # whose augmentation ranges; None: the dataset's own

    @property
    def batch_size(self):
        return sum(count for _, count in self.mix)

    @property
    def train_size(self):
        return sum(len(samples) for samples, _ in self.mix)

    @property
    def validation_size(self):
        return sum(len(samples) for samples in self.validation.values())


def training_data(dataset_cfg, network_class, roots=None, shard=1):
    """The samples, batch mix and validation sets of ``dataset_cfg`` (a ``common.config.Config``
    of a dataset config, checked when it was read: ``common.schema``).

    ``shard=N`` trains on every N-th FlyingThings3D sample, as the original's ``--shard``
    (there to fit the data in RAM; streaming needs no sharding).
    """
    roots = roots or Roots()
    name = dataset_cfg.dataset.value
    if name in HANDLERS:
        return HANDLERS[name](dataset_cfg, network_class)
    if name not in MIXES:
        raise UserError('%s: dataset: unknown dataset %r (one of %s)'
                        % (dataset_cfg.source, name, ', '.join(MIXES)))
    mix = MIXES[name]
    orig_shape = tuple(dataset_cfg.orig_shape.get(None) or mix.orig_shape)
    options = MixOptions(network_class, train_all=dataset_cfg.train_all.get(None) or False,
                         sub_type=dataset_cfg.sub_type.get(None) or 'clean',
                         parts=tuple(dataset_cfg.parts.get(None) or ['train']),
                         shard=shard, kitti=dataset_cfg.kitti.get(None) or 0,
                         hd1k=dataset_cfg.hd1k.get(None) or 0,
                         resize_shape=dataset_cfg.resize_shape.get(None) or 436,
                         orig_shape=orig_shape)
    data = TrainingData(name, [(slot.lister(roots, options), slot.count(options))
                               for slot in mix.slots if slot.count(options)], orig_shape, None)
    for validation in mix.validation:
        if validation.optional and not roots.configured(validation.key):
            data.skipped.append(validation.key)
        else:
            data.validation.update(validation.lister(roots, options))
    default_target = [s + (64 - s) % 64 for s in orig_shape]
    data.target_shape = tuple(dataset_cfg.target_shape.get(None) or default_target)
    return data


def shrink_for_debug(data, devices):
    """--debug: a few samples of each list and the smallest batch the devices allow."""
    per_device = math.lcm(len(data.mix), devices) // devices
    data.mix = [(samples[:DEBUG_SAMPLES], per_device * devices // len(data.mix))
                for samples, _ in data.mix]
    data.validation = {k: v[:DEBUG_SAMPLES] for k, v in data.validation.items()}
    return data
