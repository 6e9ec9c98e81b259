"""The config schemas (common/schema.py): every value checked when the file is read, one line
naming the file and the key, unknown keys with the closest known one."""

import pytest

from common.config import CONFIG_DIR, load_config
from common.errors import UserError
from common.schema import DATASETS, check_config

NETWORK = 'network:\n  class: MaskFlownet_S\n'


def load(tmp_path, text, kind):
    path = tmp_path / 'config.yaml'
    path.write_text(text)
    return load_config(path, kind)


def problem(tmp_path, text, kind):
    with pytest.raises(UserError) as error:
        load(tmp_path, text, kind)
    message = str(error.value)
    assert '\n' not in message and message.startswith(str(tmp_path / 'config.yaml') + ': ')
    return message[len(str(tmp_path / 'config.yaml') + ': '):]


@pytest.mark.parametrize('path', sorted(CONFIG_DIR.glob('*.yaml')), ids=lambda p: p.name)
def test_every_shipped_config_is_valid(path):
    if path.name == 'datasets.yaml':
        return   # the roots file, read by reader.roots
    load_config(path, 'network' if path.name.startswith('MaskFlownet') else 'dataset')


def test_the_originals_sintel_config_with_its_unread_kitti_15_key_loads(tmp_path):
    # network/config/sintel_kitti2015_hd1k.yaml of microsoft/MaskFlownet, as published
    text = ('validation_steps:\n  2500\n\ncheckpoint_steps:\n  5000\n\ndataset:\n  sintel\n\n'
            'kitti:\n  1\n\nhd1k:\n  1\n\ntarget_shape:\n  [320, 768]\n\nkitti_15:\n  True')
    config = load(tmp_path, text, 'dataset')
    assert (config.kitti.value, config.hd1k.value, config.target_shape.value) == (1, 1, [320, 768])


def test_defaults_are_filled_in_from_the_schema(tmp_path):
    config = load(tmp_path, 'dataset: things3d\n', 'dataset')
    assert (config.validation_steps.value, config.checkpoint_steps.value) == (2500, 5000)
    assert (config.sub_type.value, config.parts.value, config.orig_shape.value) == (
        'clean', ['train'], None)
    network = load(tmp_path, NETWORK, 'network')
    assert network.network.upfeat_ch.value == [16, 16, 16, 16]
    assert network.network.flow_multiplier.value == 1.0 and network.optimizer.q.value is None


@pytest.mark.parametrize('text, expected', [
    # unknown keys name the closest known one, at any depth
    (NETWORK + 'netwrok: {}\n', "unknown key 'netwrok' (did you mean 'network'?)"),
    (NETWORK + '  deform_bais: true\n', "unknown key 'network.deform_bais' (did you mean "
                                        "'network.deform_bias'?)"),
    (NETWORK + 'optimizer:\n  learning_rates: [[10, 1.0e-4]]\n',
     "unknown key 'optimizer.learning_rates' (did you mean 'optimizer.learning_rate'?)"),
    # types: a string, a boolean and a null are not numbers
    (NETWORK + '  flow_multiplier: "2"\n', "network.flow_multiplier: must be a number; got '2'"),
    (NETWORK + '  flow_multiplier: true\n', 'network.flow_multiplier: must be a number; got True'),
    (NETWORK + '  flow_multiplier: .nan\n', 'network.flow_multiplier: must be a finite number'),
    (NETWORK + '  flow_multiplier: 0\n', 'network.flow_multiplier: must be greater than 0; got 0'),
    (NETWORK + '  deform_bias: maybe\n', "network.deform_bias: must be true or false; got 'maybe'"),
    (NETWORK + '  upfeat_ch: [16, 16, 16]\n', 'network.upfeat_ch: must be a list of 4 positive '
                                              'integers; got [16, 16, 16]'),
    (NETWORK + '  upfeat_ch: [16, 16, 16, 0]\n', 'network.upfeat_ch[3]: must be greater than 0'),
    (NETWORK + '  mw: [1, 2]\n', 'network.mw: must be a list of 5 numbers, one per decoder level'),
    (NETWORK + '  mw: [a, 1, 1, 1, 1]\n', "network.mw[0]: must be a number; got 'a'"),
    ('network:\n  class: MaskFlownet_SS\n', "network.class: must be 'MaskFlownet_S' or "
                                           "'MaskFlownet'; got 'MaskFlownet_SS'"),
    (NETWORK + 'optimizer:\n  learning_rate: [[10, 1.0e-4], [5, 1.0e-5]]\n',
     'optimizer.learning_rate: step boundaries must increase: 10 then 5'),
    (NETWORK + 'optimizer:\n  learning_rate: [[10, "1e-4"]]\n',
     "optimizer.learning_rate: entry [10, '1e-4'] is not a [step, lr] pair"),
    (NETWORK + 'optimizer:\n  learning_rate: []\n', 'optimizer.learning_rate: must be a non-empty'),
    (NETWORK + 'optimizer:\n  q: -0.4\n', 'optimizer.q: must be greater than 0; got -0.4'),
    (NETWORK + 'optimizer:\n  wd: -1\n', 'optimizer.wd: must be greater than or equal to 0'),
    ('dataset: chairs\n', 'a dataset config, not a network config (dataset configs go after '
                          '--dataset_cfg)'),
    ('optimizer: {}\n', 'no network.class (MaskFlownet_S or MaskFlownet): not a network config'),
])
def test_network_config_problems(tmp_path, text, expected):
    assert problem(tmp_path, text, 'network').startswith(expected)


@pytest.mark.parametrize('text, expected', [
    ('dataset: chairs\ncheckpoint_step: 100\n',
     "unknown key 'checkpoint_step' (did you mean 'checkpoint_steps'?)"),
    ('dataset: chairs\nkitti: 1\n', "unknown key 'kitti' for dataset chairs (it is a key of "
                                    "sintel)"),
    ('dataset: sintel\nsub_type: final\n', "unknown key 'sub_type' for dataset sintel (it is a "
                                           "key of things3d)"),
    ('dataset: chairs\ncheckpoint_steps: 0\n', 'checkpoint_steps: must be greater than 0; got 0'),
    ('dataset: chairs\nvalidation_steps: "2500"\n',
     "validation_steps: must be an integer; got '2500'"),
    ('dataset: chairs\nvalidation_steps: 2.5\n', 'validation_steps: must be an integer; got 2.5'),
    ('dataset: chairs\nvalidation_steps:\n', 'validation_steps: must be an integer; got None'),
    ('dataset: chairs\ntarget_shape: [300, 448]\n',
     'target_shape: must be [H, W] with both multiples of 64; got [300, 448]'),
    ('dataset: chairs\norig_shape: 384\n', 'orig_shape: must be a list; got 384'),
    ('dataset: chairs\norig_shape: [384]\n', 'orig_shape: must be [H, W], two positive integers'),
    ('dataset: chairs\norig_shape: [384, -512]\n', 'orig_shape[1]: must be greater than 0'),
    ('dataset: chairs\norig_shape: [1, 512]\n', 'orig_shape: must be [H, W] with both at least '
                                             '2 pixels; got [1, 512]'),
    ('dataset: sintel\nkitti: 2\nhd1k: 2\n', 'kitti + hd1k: must leave room for Sintel in a batch'),
    ('dataset: sintel\nkitti: -1\n', 'kitti: must be greater than or equal to 0'),
    ('dataset: sintel\ntrain_all: yes please\n', "train_all: must be true or false"),
    ('dataset: things3d\nparts: [trian]\n', "parts[0]: must be 'train' or 'val'; got 'trian'"),
    ('dataset: things3d\nparts: []\n', 'parts: must have at least 1 entries'),
    ('dataset: things3d\nsub_type: dirty\n', "sub_type: must be 'clean', 'final' or 'mixed'"),
    ('dataset: chairs\noptimizer:\n  learning_rate: [[1, 0]]\n',
     'optimizer.learning_rate: entry [1, 0] is not a [step, lr] pair'),
    ('dataset: chairs\noptimizer:\n  wd: 1\n', "unknown key 'optimizer.wd' (known keys here: "
                                               "learning_rate)"),
    ('dataset: chair\n', "dataset: unknown dataset 'chair' (one of chairs, things3d, sintel"),
    ('validation_steps: 10\n', 'not a dataset config: no `dataset:` key'),
    (NETWORK, 'not a dataset config: no `dataset:` key (one of chairs, things3d, sintel, kitti, custom) '
              '(a network config? it goes first, before --dataset_cfg)'),
])
def test_dataset_config_problems(tmp_path, text, expected):
    assert problem(tmp_path, text, 'dataset').startswith(expected)


def test_every_dataset_has_a_row_in_the_training_mixes():
    from reader.mixes import MIXES
    assert set(DATASETS) <= set(MIXES) | {'custom'}
    assert set(MIXES) <= set(DATASETS)


def test_a_config_built_in_code_is_checked_the_same_way():
    with pytest.raises(UserError, match="in code: network.class: must be"):
        check_config({'network': {'class': 'X'}}, 'network', 'in code')
    assert check_config({'network': {'class': 'MaskFlownet'}}, 'network', None)
