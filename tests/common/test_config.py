"""common/config.py and the shipped YAML configs in config/."""

import pytest

from common.config import CONFIG_DIR, Config, load_config, resolve_config_path
from engine.schedule import check_schedule
from common.errors import UserError

NETWORK_CONFIGS = {
    'MaskFlownet_S': 'MaskFlownet_S', 'MaskFlownet_S_ft': 'MaskFlownet_S',
    'MaskFlownet_S_sintel': 'MaskFlownet_S', 'MaskFlownet_S_kitti': 'MaskFlownet_S',
    'MaskFlownet': 'MaskFlownet', 'MaskFlownet_ft': 'MaskFlownet',
    'MaskFlownet_sintel': 'MaskFlownet', 'MaskFlownet_kitti': 'MaskFlownet',
}
WITH_Q = {'MaskFlownet_S_sintel', 'MaskFlownet_S_kitti', 'MaskFlownet_sintel', 'MaskFlownet_kitti'}
WITH_WD = {'MaskFlownet', 'MaskFlownet_ft'}
DATASET_CONFIGS = {
    'chairs': {'validation_steps': 2500, 'checkpoint_steps': 5000, 'dataset': 'chairs',
               'target_shape': [320, 448]},
    'things3d': {'validation_steps': 2500, 'checkpoint_steps': 5000, 'dataset': 'things3d',
                 'sub_type': 'clean', 'target_shape': [384, 768]},
    'sintel': {'validation_steps': 2500, 'checkpoint_steps': 5000, 'dataset': 'sintel',
               'target_shape': [384, 768]},
    'sintel_kitti2015_hd1k': {'validation_steps': 2500, 'checkpoint_steps': 5000, 'dataset': 'sintel',
                              'kitti': 1, 'hd1k': 1, 'target_shape': [320, 768]},
    'kitti': {'validation_steps': 2500, 'checkpoint_steps': 5000, 'dataset': 'kitti',
              'target_shape': [320, 896]},
}


def test_shipped_config_set_is_exactly_the_expected_one():
    shipped = {p.stem for p in CONFIG_DIR.glob('*.yaml')}
    # datasets.yaml holds the dataset roots (reader/roots.py), not a training config.
    assert shipped == set(NETWORK_CONFIGS) | set(DATASET_CONFIGS) | {'datasets'}


@pytest.mark.parametrize('name', sorted(set(NETWORK_CONFIGS) | set(DATASET_CONFIGS)))
def test_every_shipped_config_loads_and_starts_with_a_comment(name):
    path = CONFIG_DIR / f'{name}.yaml'
    assert path.read_text().startswith('# ')
    cfg = load_config(name)
    assert isinstance(cfg.value, dict) and cfg.value


@pytest.mark.parametrize('name', sorted(NETWORK_CONFIGS))
def test_network_configs(name):
    cfg = load_config(name)
    assert set(cfg.value) == {'optimizer', 'network'}
    assert getattr(cfg.network, 'class').value == NETWORK_CONFIGS[name]
    assert cfg.network_class == NETWORK_CONFIGS[name]
    expected_optimizer_keys = {'learning_rate'} | ({'q'} if name in WITH_Q else set()) \
        | ({'wd'} if name in WITH_WD else set())
    assert set(cfg.optimizer.value) == expected_optimizer_keys
    assert cfg.optimizer.q.get(None) == (0.4 if name in WITH_Q else None)
    assert cfg.optimizer.wd.get(None) == (4.0e-4 if name in WITH_WD else None)
    schedule = cfg.optimizer.learning_rate.value
    for boundary, lr in schedule:
        assert type(boundary) is int and type(lr) is float
    check_schedule(schedule)
    if name in WITH_WD:
        assert 'not passed to the optimizer' in (CONFIG_DIR / f'{name}.yaml').read_text()


SINTEL_LR = [[100000, 5.0e-5], [150000, 2.5e-5], [200000, 1.25e-5], [300000, 3.0e-5],
             [350000, 1.5e-5], [400000, 0.75e-5], [500000, 2.0e-5], [550000, 1.0e-5],
             [600000, 0.5e-5], [700000, 1.0e-5], [750000, 0.5e-5], [800000, 0.25e-5],
             [850000, 5.0e-6], [875000, 2.5e-6], [900000, 1.25e-6], [950000, 5.0e-7],
             [975000, 2.5e-7], [1000000, 1.25e-7]]
KITTI_LR = [[50000, 3.0e-5], [70000, 1.5e-5], [90000, 0.75e-5], [110000, 3.0e-6],
            [130000, 1.5e-6], [150000, 0.75e-6], [200000, 2.0e-5], [220000, 1.0e-5],
            [240000, 0.5e-5], [260000, 2.0e-6], [280000, 1.0e-6], [300000, 0.5e-6]]
FT_LR = [[200000, 1.0e-5], [300000, 5.0e-6], [400000, 2.5e-6], [500000, 1.25e-6]]


@pytest.mark.parametrize('name, expected', [
    ('MaskFlownet_S', [[400000, 1.0e-4], [600000, 5.0e-5], [800000, 2.5e-5],
                       [1000000, 1.25e-5], [1200000, 6.25e-6]]),
    ('MaskFlownet', [[300000, 1.0e-4], [500000, 5.0e-5], [600000, 2.5e-5],
                     [700000, 1.25e-5], [800000, 6.25e-6]]),
    ('MaskFlownet_S_ft', FT_LR), ('MaskFlownet_ft', FT_LR),
    ('MaskFlownet_S_sintel', SINTEL_LR), ('MaskFlownet_sintel', SINTEL_LR),
    ('MaskFlownet_S_kitti', KITTI_LR), ('MaskFlownet_kitti', KITTI_LR),
])
def test_learning_rate_schedules_exact(name, expected):
    assert load_config(name).optimizer.learning_rate.value == expected


def test_sintel_schedule_shape_hand_checked():
    schedule = load_config('MaskFlownet_S_sintel').optimizer.learning_rate.value
    assert len(schedule) == 18
    assert schedule[0] == [100000, 5e-5]
    assert schedule[-1] == [1000000, 1.25e-7]
    assert len(load_config('MaskFlownet_kitti').optimizer.learning_rate.value) == 12


@pytest.mark.parametrize('name', sorted(DATASET_CONFIGS))
def test_dataset_configs(name):
    cfg = load_config(name)
    assert cfg.value == DATASET_CONFIGS[name]
    assert cfg.dataset.get('chairs') == DATASET_CONFIGS[name]['dataset']


def test_absent_keys_give_empty_nodes_and_defaults():
    cfg = load_config('chairs')
    assert not cfg.optimizer and not cfg.optimizer.present
    assert cfg.optimizer.learning_rate.value is None
    assert cfg.dataset and cfg.dataset.present
    assert cfg.optimizer.q.get(0.5) == 0.5
    assert cfg.target_shape.get([1, 1]) == [320, 448]  # present: the stored value


def test_present_null_value_is_present_and_not_defaulted():
    cfg = Config({'a': {'b': None}})
    assert cfg.a.b.present
    assert cfg.a.b.get(7) is None
    assert not cfg.a.c
    assert cfg.a.b.c.d.get(3) == 3


def test_config_with_the_unread_kitti_15_key_still_loads(tmp_path):
    """The original's sintel_kitti2015_hd1k.yaml also holds ``kitti_15: True``, which no code of
    the original or of ours reads: such a file still loads with the same values."""
    own = tmp_path / 'old_sintel_kitti2015_hd1k.yaml'
    own.write_text((CONFIG_DIR / 'sintel_kitti2015_hd1k.yaml').read_text() + 'kitti_15: True\n')
    cfg = load_config(own)
    for key, value in DATASET_CONFIGS['sintel_kitti2015_hd1k'].items():
        assert cfg[key].value == value


def test_resolve_by_bare_name_yaml_name_and_path(tmp_path):
    expected = CONFIG_DIR / 'kitti.yaml'
    assert resolve_config_path('kitti') == expected
    assert resolve_config_path('kitti.yaml') == expected
    assert resolve_config_path(str(expected)) == expected
    own = tmp_path / 'mine.yml'
    own.write_text('dataset: chairs\n')
    assert resolve_config_path(str(own)) == own
    assert load_config(own).dataset.value == 'chairs'


def test_missing_config_error_lists_available_names():
    with pytest.raises(UserError) as info:
        resolve_config_path('no_such_config')
    message = str(info.value)
    assert 'no_such_config' in message
    for name in ['MaskFlownet_S', 'chairs', 'sintel_kitti2015_hd1k']:
        assert name in message
    assert '\n' not in message
    with pytest.raises(UserError):
        load_config('no_such_config')


def test_empty_file_gives_empty_config(tmp_path):
    empty = tmp_path / 'empty.yaml'
    empty.write_text('# nothing here\n')
    cfg = load_config(empty)
    assert cfg.value == {}


@pytest.mark.parametrize('name, fragment', [('chairs', 'not a network config'),
                                            ('things3d.yaml', 'not a network config')])
def test_a_config_without_network_class_is_not_a_network_config(name, fragment):
    # It used to build MaskFlownet silently (a dataset config given as the network config).
    cfg = load_config(name)
    with pytest.raises(UserError, match=fragment) as info:
        cfg.network_class
    assert cfg.source in str(info.value)


def test_an_unknown_network_class_is_named(tmp_path):
    path = tmp_path / 'net.yaml'
    path.write_text('network:\n  class: MaskFlownetXL\n')
    with pytest.raises(UserError, match="network.class 'MaskFlownetXL' is not one of"):
        load_config(path).network_class


def test_malformed_yaml_is_user_error_naming_path(tmp_path):
    bad = tmp_path / 'bad.yaml'
    bad.write_text('optimizer:\n  learning_rate: [[1, 2]\n')
    with pytest.raises(UserError) as info:
        load_config(bad)
    message = str(info.value)
    assert str(bad) in message
    assert 'YAML' in message
    assert '\n' not in message


@pytest.mark.parametrize('text', ['- 1\n- 2\n', '42\n', 'just a string\n'])
def test_non_mapping_yaml_is_user_error_naming_path(tmp_path, text):
    bad = tmp_path / 'list.yaml'
    bad.write_text(text)
    with pytest.raises(UserError) as info:
        load_config(bad)
    assert str(bad) in str(info.value)
    assert 'mapping' in str(info.value)


@pytest.mark.parametrize('content, problem', [
    (b'network: ' + b'[' * 5000 + b']' * 5000 + b'\n', 'nested too deeply to be a config'),
    (b'network:\n  class: MaskFlownet_S\n  class: MaskFlownet\n', "the key 'class' is given twice"),
    (b'network:\n  class: MaskFlownet_S\n\xff\n', 'not a text file in UTF-8'),
    (b'network: !!python/object/apply:os.system ["touch pwned"]\n', 'malformed YAML'),
])
def test_a_config_file_that_is_no_config_is_one_line(tmp_path, monkeypatch, content, problem):
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'bad.yaml').write_bytes(content)
    with pytest.raises(UserError) as error:
        load_config(tmp_path / 'bad.yaml', 'network')
    assert problem in str(error.value) and '\n' not in str(error.value)
    assert not (tmp_path / 'pwned').exists()


def test_a_folder_given_as_config_says_so(tmp_path):
    (tmp_path / 'dir.yaml').mkdir()
    with pytest.raises(UserError, match=r'dir.yaml: not a regular file'):
        load_config(tmp_path / 'dir.yaml')
