"""reader/mixes.py: dataset configs -> training data: the per-batch mix, crop shapes and
validation sets."""
import re
from pathlib import Path

import pytest

from common.config import load_config
from common.errors import UserError
from reader.mixes import shrink_for_debug, training_data
from reader import roots
from tests.helpers import CHAIRS2, SAMPLE, fake_hd1k, fake_kitti, fake_sintel, link, names


def fake_things3d(root):
    """Both parts and cameras, each with one forward pair (frames 0 -> 1) of FlyingChairs2 crops."""
    for part in ('train', 'val'):
        for camera in ('left', 'right'):
            for k in (0, 1):
                link(CHAIRS2 / ('0000000-img_%d.png' % k),
                     root / part / 'image_clean' / camera / ('%07d.png' % k))
            link(CHAIRS2 / '0000000-flow_01.flo', root / part / 'flow' / camera / 'into_future' / '0000000.flo')
            (root / part / 'flow' / camera / 'into_past').mkdir(parents=True)
    return root


@pytest.fixture
def roots_file(tmp_path, monkeypatch):
    for key in roots.DATASETS:
        monkeypatch.delenv(roots.env_var(key), raising=False)
    fake_sintel(tmp_path / 'sintel', ['alley_1', 'ambush_2'])   # ambush_2 is a validation sequence
    fake_kitti(tmp_path / 'kitti12', [0, 1, 2, 3], edition='2012')   # 0 is a 2012 validation index
    fake_kitti(tmp_path / 'kitti15', [9, 10, 11])                    # 10, 11 are 2015 validation indices
    fake_hd1k(tmp_path / 'hd1k', [3, 2])
    fake_things3d(tmp_path / 'things3d')
    path = tmp_path / 'roots.yaml'
    path.write_text('sintel: sintel\nkitti2012: kitti12\nkitti2015: kitti15\nhd1k: hd1k\n'
                    'things3d: things3d\n')
    monkeypatch.setenv(roots.ROOTS_FILE_ENV, str(path))
    return path


def test_sintel_kitti_hd1k_mix(roots_file):
    data = training_data(load_config('sintel_kitti2015_hd1k.yaml'), 'MaskFlownet_S')
    assert [count for _, count in data.mix] == [2, 1, 1] and data.batch_size == 4
    sintel_train, kitti_train, hd1k_train = (samples for samples, _ in data.mix)
    assert {s.name.split('/')[2] for s in sintel_train} == {'alley_1'}   # training1 only
    assert {s.group for s in sintel_train} == {'clean', 'final'}
    assert len(kitti_train) == 3 and all(s.resize_hw == (436, 1024) for s in kitti_train)
    assert len(hd1k_train) == 3 and all(s.resize_hw == (436, 1024) for s in hd1k_train)
    assert data.orig_shape == (436, 1024) and data.target_shape == (320, 768)
    assert sorted(data.validation) == ['sintel.clean', 'sintel.final']
    assert {s.name.split('/')[2] for s in data.validation['sintel.final']} == {'ambush_2'}


def test_things3d_with_shard_and_its_validation_sets(roots_file):
    full = training_data(load_config('things3d.yaml'), 'MaskFlownet_S')
    half = training_data(load_config('things3d.yaml'), 'MaskFlownet_S', shard=2)
    assert names(half.mix[0][0]) == names(full.mix[0][0])[::2] and len(full.mix[0][0]) == 2
    assert all('/train/' in name for name in names(full.mix[0][0]))   # the original's train part
    assert full.skipped == ['chairs']   # not configured: its validation is skipped
    assert full.batch_size == 4 and full.orig_shape == (540, 960) and full.target_shape == (384, 768)
    assert sorted(full.validation) == ['kitti.2012', 'kitti.2015', 'sintel.clean', 'sintel.final']
    assert all(s.crop_bottom_left == (370, 1224) for s in full.validation['kitti.2015'])
    # MaskFlownet-S validates on all of Sintel training, MaskFlownet on the held-out split.
    assert len(full.validation['sintel.clean']) == 2
    stage2 = training_data(load_config('things3d.yaml'), 'MaskFlownet')
    assert len(stage2.validation['sintel.clean']) == 1


def test_things3d_val_part_only_when_the_config_asks(roots_file, tmp_path):
    config = tmp_path / 'things3d_all.yaml'
    config.write_text(Path(load_config('things3d.yaml').source).read_text() + 'parts: [train, val]\n')
    both = training_data(load_config(config), 'MaskFlownet_S')
    assert sorted({name.split('/')[1] for name in names(both.mix[0][0])}) == ['train', 'val']
    config.write_text('dataset: things3d\nparts: [test]\n')
    with pytest.raises(UserError, match=r"parts\[0\]: must be 'train' or 'val'; got 'test'"):
        load_config(config, 'dataset')


def test_kitti_train_and_valid_parts(roots_file):
    data = training_data(load_config('kitti.yaml'), 'MaskFlownet')
    train, = [samples for samples, _ in data.mix]
    assert names(train) == ['kitti2012/training/000001', 'kitti2012/training/000002', 'kitti2012/training/000003',
                            'kitti2015/training/000009']
    assert all(s.resize_hw == (370, 1224) for s in train)
    assert names(data.validation['kitti.12']) == ['kitti2012/training/000000']
    assert names(data.validation['kitti.15']) == ['kitti2015/training/000010', 'kitti2015/training/000011']
    assert data.orig_shape == (370, 1224) and data.target_shape == (320, 896)


def test_debug_shrinks_the_batch_to_what_the_devices_need(roots_file):
    data = training_data(load_config('sintel_kitti2015_hd1k.yaml'), 'MaskFlownet_S')
    assert shrink_for_debug(data, 1).batch_size == 3   # one sample of each dataset
    data = training_data(load_config('sintel_kitti2015_hd1k.yaml'), 'MaskFlownet_S')
    shrunk = shrink_for_debug(data, 2)
    assert [c for _, c in shrunk.mix] == [2, 2, 2] and shrunk.batch_size % 2 == 0


@pytest.mark.parametrize('text, message', [
    ('optimizer: {}\n', 'not a dataset config'),
    ('dataset: chairs\ntarget_shape: [300, 400]\n', 'target_shape: must be [H, W] with both '
                                                     'multiples of 64'),
    ('dataset: chairs\norig_shape: 384\n', 'orig_shape: must be a list'),
])
def test_malformed_dataset_configs(roots_file, tmp_path, monkeypatch, text, message):
    monkeypatch.setenv('MASKFLOWNET_CHAIRS', str(SAMPLE / 'FlyingChairs_release'))
    bad = tmp_path / 'bad.yaml'
    bad.write_text(text)
    with pytest.raises(UserError, match=re.escape(message)) as error:
        training_data(load_config(str(bad), 'dataset'), 'MaskFlownet_S')
    assert str(bad) in str(error.value)


def test_unknown_dataset_and_missing_root(roots_file, tmp_path, monkeypatch):
    bad = tmp_path / 'bad.yaml'
    bad.write_text('dataset: flyingfish\n')
    with pytest.raises(UserError, match='unknown dataset .flyingfish.'):
        training_data(load_config(str(bad)), 'MaskFlownet_S')
    with pytest.raises(UserError, match='MASKFLOWNET_CHAIRS'):
        training_data(load_config('chairs.yaml'), 'MaskFlownet_S')
