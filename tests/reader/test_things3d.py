"""reader/things3d.py: FlyingThings3D listing (directions, passes, parts, shards) and loading."""
import cv2
import numpy as np
import pytest

from common.errors import UserError
from reader import flowio, things3d
from reader.sample import load_sample, select_shard
from tests.helpers import CHAIRS2, link, names

pytestmark = pytest.mark.usefixtures('no_root_environment')


def fake_things3d(root, passes=('clean',)):
    """Frames 0 and 1 with forward flow 0 and backward flow 1 (FlyingChairs2 crops, png + flo)."""
    for pass_name in passes:
        link(CHAIRS2 / '0000000-img_0.png', root / 'train' / f'image_{pass_name}' / 'left' / '0000000.png')
        link(CHAIRS2 / '0000000-img_1.png', root / 'train' / f'image_{pass_name}' / 'left' / '0000001.png')
    flows = root / 'train' / 'flow' / 'left'
    link(CHAIRS2 / '0000000-flow_01.flo', flows / 'into_future' / '0000000.flo')
    link(CHAIRS2 / '0000000-flow_01.flo', flows / 'into_future' / '0000001.flo')  # no frame 2
    link(CHAIRS2 / '0000000-flow_10.flo', flows / 'into_past' / '0000001.flo')
    return root


def test_things3d_listing_directions_and_bgr_loading(tmp_path):
    root = fake_things3d(tmp_path / 'ft3d')
    samples = things3d.list_samples(root, 'clean', parts=('train',), cameras=('left',))
    assert names(samples) == ['things3d/train/clean/left/into_future/0000000',
                              'things3d/train/clean/left/into_past/0000001']
    forward, backward = samples
    assert (forward.img1.name, forward.img2.name) == ('0000000.png', '0000001.png')
    assert (backward.img1.name, backward.img2.name) == ('0000001.png', '0000000.png')
    example = load_sample(forward)
    np.testing.assert_array_equal(example.img1, cv2.imread(str(forward.img1)))  # BGR
    np.testing.assert_array_equal(example.img2, cv2.imread(str(forward.img2)))
    np.testing.assert_array_equal(example.flow, flowio.read_flo(forward.flow))
    assert example.flow.shape == (50, 50, 2) and example.mask is None


def test_things3d_mixed_shard_and_missing_part(tmp_path):
    root = fake_things3d(tmp_path / 'ft3d', passes=('clean', 'final'))
    mixed = things3d.list_samples(root, 'mixed', parts=('train',), cameras=('left',))
    assert [s.group for s in mixed] == ['clean', 'clean', 'final', 'final']
    halves = [things3d.list_samples(root, 'mixed', parts=('train',), cameras=('left',),
                                    shard=(i, 2)) for i in (0, 1)]
    assert names(halves[0]) == names(mixed[0::2]) and names(halves[1]) == names(mixed[1::2])
    with pytest.raises(UserError, match='shard'):
        select_shard(mixed, (2, 2))
    with pytest.raises(UserError, match=r'val/image_clean/left: FlyingThings3D folder not found'):
        things3d.list_samples(root, 'clean', parts=('train', 'val'), cameras=('left',))


def test_things3d_defaults_to_the_train_part_as_the_original_trained(tmp_path):
    # A user with only train/ gets no error; the original trained on train only (train=78518).
    root = fake_things3d(tmp_path / 'ft3d')
    assert not (root / 'val').exists()
    samples = things3d.list_samples(root, 'clean', cameras=('left',))
    assert len(samples) == 2 and all('/train/' in s.name for s in samples)
