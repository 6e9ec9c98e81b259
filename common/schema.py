"""What a network config and a dataset config may hold: one schema per kind, checked as a whole
when the file is read, before any network is built or data read.

Every key is known: a misspelt one (``checkpoint_step:``, ``netwrok:``) is an error naming the
closest known key, not a default silently used. Values are checked for type and range: a
number is a YAML number (not a string, not ``true``), finite, and in range; a shape is
``[H, W]``. A dataset config's keys depend on its ``dataset:``; a key of another dataset is
an error that says which dataset it belongs to.

The problems are reported as one line, ``FILE: KEY: problem``, the first one found.
"""
import difflib
from typing import Annotated, List, Literal, Optional

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictFloat,
                      StrictInt, StrictStr, ValidationError, field_validator, model_validator)

from common.errors import UserError
from common.options import MAX_SIDE_PX

NETWORK_CLASSES = ('MaskFlownet_S', 'MaskFlownet')
DECODER_LEVELS = 5

PositiveInt = Annotated[StrictInt, Field(gt=0)]
# Sides: MXNet cannot resize to 32768 px or more (common.options.MAX_SIDE_PX).
Side = Annotated[StrictInt, Field(gt=0, le=MAX_SIDE_PX)]
# Counts far beyond any use, so that a typo is an error here, not MXNet's failure later.
MAX_CHANNELS = 4096
MAX_BATCH = 65536
MAX_STEPS = 10 ** 9
NonNegativeInt = Annotated[StrictInt, Field(ge=0)]
PositiveNumber = Annotated[StrictFloat, Field(gt=0, allow_inf_nan=False)]
NonNegativeNumber = Annotated[StrictFloat, Field(ge=0, allow_inf_nan=False)]
NonEmptyString = Annotated[StrictStr, Field(min_length=1)]


def _entries(count, what):
    def check(values):
        if len(values) != count:
            raise ValueError('must be %s; got %r' % (what, values))
        return values
    return AfterValidator(check)


Shape = Annotated[List[Side], _entries(2, '[H, W], two positive integers')]


class _Schema(BaseModel):
    model_config = ConfigDict(extra='forbid', populate_by_name=True)


def _two_pixels_or_more(shape):
    # the augmentation maps the crop's first and last pixel centres: one pixel has no extent
    if shape is not None and min(shape) < 2:
        raise ValueError('must be [H, W] with both at least 2 pixels; got %r' % (shape,))
    return shape


def _multiple_of_64(shape):
    if shape is not None and any(side % 64 for side in shape):
        raise ValueError('must be [H, W] with both multiples of 64; got %r' % (shape,))
    return shape


def check_schedule(schedule):
    """A list of [step boundary, learning rate] pairs with increasing boundaries (or None);
    ValueError saying what is wrong otherwise."""
    if schedule is None:
        return None
    if not isinstance(schedule, list) or not schedule:
        raise ValueError('must be a non-empty list of [step, lr] pairs; got %r' % (schedule,))
    previous = None
    for entry in schedule:
        ok = (isinstance(entry, list) and len(entry) == 2
              and isinstance(entry[0], int) and not isinstance(entry[0], bool) and entry[0] > 0
              and isinstance(entry[1], (int, float)) and not isinstance(entry[1], bool)
              and 0 < entry[1] < float('inf'))
        if not ok:
            hint = (_number_hint(entry[1]) if isinstance(entry, list) and len(entry) == 2
                    else '')
            raise ValueError('entry %s is not a [step, lr] pair with a positive step and a '
                             'positive learning rate%s' % (_shown(entry), hint))
        if previous is not None and entry[0] <= previous:
            raise ValueError('step boundaries must increase: %d then %d' % (previous, entry[0]))
        previous = entry[0]
    return schedule


class _Optimizer(_Schema):
    learning_rate: Optional[list] = None
    # listed by the original's configs; applied only with --use_wd, as the original never did
    wd: Optional[NonNegativeNumber] = None
    q: Optional[PositiveNumber] = None     # the robust loss's exponent (fine-tuning)

    _schedule = field_validator('learning_rate')(lambda cls, value: check_schedule(value))


class _Network(_Schema):
    network_class: Literal[NETWORK_CLASSES] = Field(alias='class')
    flow_multiplier: PositiveNumber = 1.0
    deform_bias: StrictBool = True
    upfeat_ch: Annotated[List[Annotated[StrictInt, Field(gt=0, le=MAX_CHANNELS)]],
                         _entries(4, 'a list of 4 positive integers')] = \
        [16, 16, 16, 16]
    # one weight per decoder level, coarse to fine
    mw: Optional[Annotated[List[NonNegativeNumber],
                           _entries(DECODER_LEVELS, 'a list of %d numbers, one per decoder level'
                                    % DECODER_LEVELS)]] = None


class NetworkConfig(_Schema):
    network: _Network
    optimizer: _Optimizer = _Optimizer()


class _DatasetOptimizer(_Schema):
    learning_rate: Optional[list] = None   # replaces the network config's schedule

    _schedule = field_validator('learning_rate')(lambda cls, value: check_schedule(value))


class _Dataset(_Schema):
    """The keys every dataset config may have."""
    dataset: str
    validation_steps: Annotated[StrictInt, Field(gt=0, le=MAX_STEPS)] = 2500
    checkpoint_steps: Annotated[StrictInt, Field(gt=0, le=MAX_STEPS)] = 5000
    orig_shape: Optional[Shape] = None      # the training crop (H, W); the dataset's own default
    target_shape: Optional[Shape] = None    # network input after augmentation; multiples of 64
    optimizer: _DatasetOptimizer = _DatasetOptimizer()

    _target = field_validator('target_shape')(lambda cls, value: _multiple_of_64(value))
    _crop = field_validator('orig_shape')(lambda cls, value: _two_pixels_or_more(value))


class ChairsDataset(_Dataset):
    dataset: Literal['chairs']


class Things3dDataset(_Dataset):
    dataset: Literal['things3d']
    sub_type: Literal['clean', 'final', 'mixed'] = 'clean'
    parts: Annotated[List[Literal['train', 'val']], Field(min_length=1, max_length=2)] = ['train']


class SintelDataset(_Dataset):
    dataset: Literal['sintel']
    kitti: NonNegativeInt = 0       # KITTI 2015 samples in each batch of 4
    hd1k: NonNegativeInt = 0        # HD1K samples in each batch of 4
    train_all: StrictBool = False   # train on the validation split too
    resize_shape: Side = 436
    # In the original's sintel_kitti2015_hd1k.yaml, read by no code there either: accepted so
    # that the original's file loads, and ignored.
    kitti_15: Optional[StrictBool] = None

    @model_validator(mode='after')
    def _room_for_sintel(self):
        if self.kitti + self.hd1k >= 4:
            raise ValueError('kitti + hd1k: must leave room for Sintel in a batch of 4; got '
                             'kitti: %d, hd1k: %d' % (self.kitti, self.hd1k))
        return self


class KittiDataset(_Dataset):
    dataset: Literal['kitti']
    train_all: StrictBool = False


class CustomDataset(_Dataset):
    """Your own data: list files of IMAGE1 IMAGE2 FLOW [VALID [OCC]] lines (reader.custom);
    relative list paths are relative to the config file's folder."""
    dataset: Literal['custom']
    train_list: Optional[NonEmptyString] = None        # needed to train
    validation_list: Optional[NonEmptyString] = None   # validated on (training, --valid)
    batch_size: Annotated[StrictInt, Field(gt=0, le=MAX_BATCH)] = 4   # a step's samples, all devices
    # the original's augmentation ranges of one of its datasets (network.augmentation)
    augmentation: Literal['chairs', 'sintel', 'kitti'] = 'chairs'

    @model_validator(mode='after')
    def _some_list(self):
        if self.train_list is None and self.validation_list is None:
            raise ValueError('train_list, validation_list: give one or both (list files of '
                             'IMAGE1 IMAGE2 FLOW [VALID [OCC]] lines)')
        return self


DATASETS = {'chairs': ChairsDataset, 'things3d': Things3dDataset, 'sintel': SintelDataset,
            'kitti': KittiDataset, 'custom': CustomDataset}


def check_config(data, kind, source):
    """Raise UserError (one line naming ``source`` and the key) unless ``data`` is a valid
    config of ``kind`` ('network' or 'dataset'); returns the validated model."""
    where = source or 'config'
    if kind == 'network':
        if 'network' not in data and 'dataset' in data:
            raise UserError('%s: a dataset config, not a network config (dataset configs go '
                            'after --dataset_cfg)' % where)
        if not isinstance(data.get('network'), dict) or 'class' not in data['network']:
            raise UserError('%s: no network.class (MaskFlownet_S or MaskFlownet): not a network '
                            'config (dataset configs go after --dataset_cfg)' % where)
        return _validate(NetworkConfig, data, where)
    if kind != 'dataset':
        raise ValueError('unknown config kind %r' % kind)
    name = data.get('dataset')
    if name is None:
        hint = (' (a network config? it goes first, before --dataset_cfg)'
                if 'network' in data else '')
        raise UserError('%s: not a dataset config: no `dataset:` key (one of %s)%s'
                        % (where, ', '.join(DATASETS), hint))
    if not isinstance(name, str) or name not in DATASETS:
        raise UserError('%s: dataset: unknown dataset %r (one of %s)'
                        % (where, name, ', '.join(DATASETS)))
    return _validate(DATASETS[name], data, where)


def _validate(model, data, where):
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise UserError(_first_problem(error, model, data, where)) from None


def _first_problem(error, model, data, where):
    problem = error.errors()[0]
    loc = list(problem['loc'])
    key = ''.join('[%d]' % part if isinstance(part, int) else '.' + part for part in loc)[1:]
    if problem['type'] == 'extra_forbidden':
        return '%s: unknown key %r%s' % (where, key, _suggestion(model, loc))
    if problem['type'] == 'missing':
        return '%s: %s: missing' % (where, key)
    message = problem['msg']
    if message.startswith('Value error, '):   # our own checks say what and what was given
        message = message[len('Value error, '):]
    elif problem['type'] in ('too_short', 'too_long'):
        bound = problem['ctx'].get('min_length', problem['ctx'].get('max_length'))
        message = 'must have %s %s entries; got %r' % (
            'at least' if problem['type'] == 'too_short' else 'at most', bound,
            problem.get('input'))
    else:
        message = '%s; got %s%s' % (_plain(message), _shown(problem.get('input')),
                                    _number_hint(problem.get('input')))
    return '%s: %s' % (where, '%s: %s' % (key, message) if loc else message)


def _shown(value, limit=120):
    """repr(value), cut short: a YAML alias bomb would otherwise make a line of gigabytes."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + '... (%d characters)' % len(text)


def _number_hint(value):
    """YAML 1.1 reads 1e-4 (no dot) as text: say so when a string is a number."""
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return ''
        return (' (YAML reads %s as text, not as a number: write it with a dot and no quotes, '
                'e.g. 1.0e-4)' % value)
    return ''


def _plain(message):
    """Pydantic's message in this project's words."""
    return (message.replace('Input should be ', 'must be ')
            .replace('a valid number', 'a number').replace('a valid integer', 'an integer')
            .replace('a valid boolean', 'true or false').replace('a valid list', 'a list')
            .replace('String should have at least 1 character', 'must not be empty'))


def _fields_at(model, loc):
    """The field names of the (nested) model that ``loc`` (without its last part) leads to."""
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) or next(
            (f for f in model.model_fields.values() if f.alias == part), None)
        annotation = getattr(field, 'annotation', None)
        inner = [a for a in getattr(annotation, '__args__', ()) or (annotation,)
                 if isinstance(a, type) and issubclass(a, BaseModel)]
        if not inner:
            return []
        model = inner[0]
    return [field.alias or name for name, field in model.model_fields.items()]


def _suggestion(model, loc):
    """' (did you mean ...)' for an unknown key: the closest key there, or the dataset that
    has this key."""
    key = str(loc[-1])
    known = _fields_at(model, loc)
    if len(loc) == 1 and key not in known:
        owners = [name for name, other in DATASETS.items() if key in other.model_fields]
        if owners and issubclass(model, _Dataset):
            return ' for dataset %s (it is a key of %s)' % (
                model.model_fields['dataset'].annotation.__args__[0], ', '.join(owners))
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if close:
        return " (did you mean '%s'?)" % '.'.join([str(p) for p in loc[:-1]] + close)
    return ' (known keys here: %s)' % ', '.join(sorted(known)) if known else ''
