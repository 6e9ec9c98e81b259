"""What a training run's next step depends on beyond its weights and optimizer state, saved
with every checkpoint as ``RUN_STEPS.run.json`` so that a resumed run continues exactly as if
it had never stopped.

- ``seed``: the run's seed. The data stream (``reader.loader.BatchStream``) is a pure function
  of it: its position after ``steps`` batches is known without its history, so the position
  needs no saving. The network-side augmentation of each step is seeded from (seed, worker,
  step), so it needs no saved generator state either.
- ``train_epe`` and ``step_time``: the state of the log's two moving averages, so that the
  resumed log goes on with the values the uninterrupted run would have logged.
- ``data``: what the stream was read from (the dataset, each slot's sample count and a digest
  of its sample names, the batch); ``workers``, ``devices``, ``kvstore`` and ``weight_decay``:
  how the steps were computed. They say when a resume cannot be exact.

A JSON file, never a pickle: it is read with ``json`` and checked field by field. The original's
checkpoints, and this project's before it had the file, have none: they resume as before, with
a line saying the resume is not exact.
"""
import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass, field
from typing import List

from common.errors import UserError
from common.options import MAX_SEED

FORMAT = 1
SUFFIX = '.run.json'


@dataclass(frozen=True)
class RunState:
    seed: int
    steps: int
    train_epe: List[float] = field(default_factory=lambda: [0.0, 1e-8])   # MovingAverage
    step_time: List[float] = field(default_factory=lambda: [0.0, 1e-8])
    data: dict = field(default_factory=dict)
    workers: int = 1
    devices: str = 'cpu x1'        # device type and count of each worker (-g)
    kvstore: str = 'device'
    weight_decay: float = 0.0      # --use_wd's, as the optimizer applied it
    format: int = FORMAT

    def to_json(self):
        return json.dumps(asdict(self), indent=1, sort_keys=True) + '\n'


def state_path(params_path):
    """``RUN_STEPS.run.json`` beside ``RUN_STEPS.params``."""
    return os.fspath(params_path)[:-len('.params')] + SUFFIX


def data_fingerprint(data):
    """What a run's stream reads and how: dataset, batch, crop and network size, augmentation
    ranges, and each slot's samples (count and a digest of their names, in order: a custom
    list's by the files each line names, not its line numbers)."""
    slots = []
    for samples, count in data.mix:
        digest = hashlib.sha256('\n'.join(getattr(s, 'key', None) or getattr(s, 'name', str(s))
                                          for s in samples).encode())
        slots.append({'samples': len(samples), 'per_batch': count,
                      'names_sha256': digest.hexdigest()[:16]})
    return {'dataset': data.dataset, 'batch': data.batch_size, 'slots': slots,
            'crop': list(data.orig_shape), 'target': list(data.target_shape),
            'augmentation': getattr(data, 'augmentation', None) or data.dataset}


def read_state(params_path, steps=None):
    """The RunState saved with the checkpoint at ``params_path`` (of ``steps``, when known from
    its name), or None if it has none."""
    path = state_path(params_path)
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding='utf-8') as f:
            raw = json.load(f)
    except RecursionError:
        raise UserError('%s: not a run state of this project (nested too deeply); move it away '
                        'to resume without it (not exactly)' % path) from None
    except (OSError, ValueError) as error:
        raise UserError('%s: unreadable run state (%s); move it away to resume without it '
                        '(not exactly)' % (path, error)) from None
    problem = _problem(raw)
    if not problem and steps is not None and raw['steps'] != steps:
        problem = 'it is of step %d, the checkpoint of step %d' % (raw['steps'], steps)
    if problem:
        raise UserError('%s: not a run state of this project (%s); move it away to resume '
                        'without it (not exactly)' % (path, problem))
    return RunState(**raw)


def _problem(raw):
    if not isinstance(raw, dict):
        return 'not a JSON object'
    if raw.get('format') != FORMAT:
        return 'format %r, expected %d' % (raw.get('format'), FORMAT)
    expected = {'seed', 'steps', 'train_epe', 'step_time', 'data', 'workers', 'devices',
                'kvstore', 'weight_decay', 'format'}
    if set(raw) != expected:
        missing, unknown = sorted(expected - set(raw)), sorted(set(raw) - expected)
        return '; '.join(part for part in (missing and 'no %s' % ', '.join(missing),
                                           unknown and 'unknown %s' % ', '.join(unknown)) if part)
    for key, largest in (('seed', MAX_SEED), ('steps', 10 ** 12), ('workers', 10 ** 6)):
        if (not isinstance(raw[key], int) or isinstance(raw[key], bool)
                or not 0 <= raw[key] <= largest):
            return '%s is not an integer from 0 to %d' % (key, largest)
    for key in ('train_epe', 'step_time'):
        value = raw[key]
        if (not isinstance(value, list) or len(value) != 2
                or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in value)):
            return '%s is not a pair of finite numbers' % key
    if not isinstance(raw['data'], dict):
        return 'data is not an object'
    if not isinstance(raw['devices'], str) or not isinstance(raw['kvstore'], str):
        return 'devices or kvstore is not a string'
    if (not isinstance(raw['weight_decay'], (int, float)) or isinstance(raw['weight_decay'], bool)
            or not math.isfinite(raw['weight_decay'])):
        return 'weight_decay is not a finite number'
    return None


def devices_of(ctx):
    """'cpu x1', 'gpu x4': the device type and count a worker trains on."""
    return '%s x%d' % (ctx[0].device_type, len(ctx))


def resume_notes(state, data, workers, seed_option, params_path, devices='cpu x1',
                 kvstore='device', weight_decay=0.0):
    """Lines saying how a resume from ``state`` (None: none saved) differs from the
    uninterrupted run; [] when it continues exactly."""
    name = os.path.basename(os.fspath(params_path))
    if state is None:
        return ['%s has no run state (%s): the resume is not exact: the data order and the '
                'augmentation start anew' % (name, 'an older checkpoint or the original\'s')]
    notes = []
    if seed_option is not None and seed_option != state.seed:
        notes.append('--seed %d replaces the run\'s seed %d: the resume is not exact'
                     % (seed_option, state.seed))
    if state.data != data_fingerprint(data):
        notes.append('the data differs from what the run read before %s (dataset config, '
                     'samples, batch, crop or augmentation): the resume is not exact' % name)
    elif state.workers != workers:
        notes.append('the run was trained by %d worker(s), now %d: the data goes on exactly '
                     '(no sample twice, none skipped), the augmentation draws differ'
                     % (state.workers, workers))
    if state.devices != devices:
        notes.append('the run trained on %s per worker, now %s: each device draws its own '
                     'augmentation, so the resume is not exact' % (state.devices, devices))
    if state.kvstore != kvstore:
        notes.append('the run summed gradients with --kvstore %s, now %s: the resume is not '
                     'exact' % (state.kvstore, kvstore))
    if state.weight_decay != weight_decay:
        notes.append('the weight decay was %g, now %g (--use_wd is read on every start): the '
                     'resume is not exact' % (state.weight_decay, weight_decay))
    return notes
