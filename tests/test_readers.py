"""Dataset readers: root lookup, listing, splits and loading, on real-format files.

Fake trees are built in tmp_path from symlinks to the real files in tests/data/datasets and
sample_data, so that the layouts (not the pixels) are what a test varies.
"""
import dataclasses
import filecmp
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from common.errors import UserError
from reader import chairs, flowio, hd1k, kitti, roots, sintel, things3d
from reader.sample import Sample, load_sample, select_shard

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / 'tests' / 'data' / 'datasets'
SAMPLES = REPO / 'sample_data'
CHAIRS = SAMPLES / 'FlyingChairs_release'
SINTEL = SAMPLES / 'MPI-Sintel-complete'
KITTI15 = SAMPLES / 'data_scene_flow'
ALLEY = DATA / 'sintel' / 'training'
KITTI_FILES = DATA / 'kitti2015' / 'training'
VALIDATION_SEQUENCES = {'ambush_2', 'ambush_6', 'bamboo_2', 'cave_4', 'market_6', 'temple_2'}


@pytest.fixture(autouse=True)
def no_root_environment(monkeypatch):
    monkeypatch.delenv(roots.ROOTS_FILE_ENV, raising=False)
    for key in roots.DATASETS:
        monkeypatch.delenv(roots.env_var(key), raising=False)


def link(target, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(Path(target).resolve())
    return path


def touch(path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


def names(samples):
    return [s.name for s in samples]


# ---------------------------------------------------------------- roots

def write_roots(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_yaml_relative_path_is_relative_to_the_yaml_file(tmp_path, monkeypatch):
    (tmp_path / 'cfg' / 'data' / 'sintel').mkdir(parents=True)
    roots_file = write_roots(tmp_path / 'cfg' / 'roots.yaml', 'sintel: data/sintel\n')
    monkeypatch.chdir(tmp_path)  # a cwd-relative reading would look for tmp/data/sintel
    assert roots.dataset_root('sintel', roots_file) == tmp_path / 'cfg' / 'data' / 'sintel'


def test_roots_file_from_environment_and_env_var_precedence(tmp_path, monkeypatch):
    (tmp_path / 'from_file').mkdir()
    (tmp_path / 'from_env').mkdir()
    roots_file = write_roots(tmp_path / 'roots.yaml', f'kitti2015: {tmp_path / "from_file"}\n')
    monkeypatch.setenv('MASKFLOWNET_DATASETS', str(roots_file))
    assert roots.dataset_root('kitti2015') == tmp_path / 'from_file'
    assert roots.configured('kitti2015') and not roots.configured('kitti2012')
    monkeypatch.setenv('MASKFLOWNET_KITTI2015', str(tmp_path / 'from_env'))
    assert roots.dataset_root('kitti2015') == tmp_path / 'from_env'


def test_unset_root_names_env_var_key_and_file(tmp_path):
    roots_file = write_roots(tmp_path / 'roots.yaml', '# nothing set\n')
    with pytest.raises(UserError) as error:
        roots.dataset_root('hd1k', roots_file)
    message = str(error.value)
    assert 'MASKFLOWNET_HD1K' in message and "'hd1k'" in message and str(roots_file) in message
    assert 'hd1k_input' in message and '\n' not in message
    assert not roots.configured('hd1k', roots_file)


def test_missing_root_folder_names_the_path_and_what_was_expected(tmp_path, monkeypatch):
    missing = tmp_path / 'no_such_sintel'
    monkeypatch.setenv('MASKFLOWNET_SINTEL', str(missing))
    with pytest.raises(UserError) as error:
        roots.dataset_root('sintel')
    message = str(error.value)
    assert str(missing) in message and 'MASKFLOWNET_SINTEL' in message
    assert 'MPI-Sintel-complete' in message and 'does not exist' in message
    assert roots.configured('sintel')   # set, so using it reports the wrong path


@pytest.mark.parametrize('text, problem', [
    ('sintl: /data\n', "unknown dataset key 'sintl'"),
    ('- sintel\n', 'mapping'),
    ('sintel: [1, 2]\n', "value of 'sintel'"),
    ('sintel: "unterminated\n', 'cannot read'),
])
def test_malformed_roots_file_is_user_error_naming_it(tmp_path, text, problem):
    roots_file = write_roots(tmp_path / 'roots.yaml', text)
    with pytest.raises(UserError, match=problem) as error:
        roots.dataset_root('sintel', roots_file)
    assert str(roots_file) in str(error.value)


def test_named_roots_file_must_exist(tmp_path, monkeypatch):
    monkeypatch.setenv('MASKFLOWNET_DATASETS', str(tmp_path / 'absent.yaml'))
    with pytest.raises(UserError, match='absent.yaml: dataset roots file not found'):
        roots.dataset_root('chairs')


def test_unknown_key_is_user_error():
    with pytest.raises(UserError, match="unknown dataset key 'flyingchairs'"):
        roots.dataset_root('flyingchairs')


def test_shipped_roots_file_sets_nothing_but_documents_every_key():
    text = roots.DEFAULT_ROOTS_FILE.read_text()
    import yaml
    assert yaml.safe_load(text) is None
    for key in roots.DATASETS:
        assert f'# {key}: ' in text and roots.env_var(key) in text
    assert not roots.configured('sintel')


def test_sample_data_roots_file_points_at_the_bundled_datasets(monkeypatch):
    monkeypatch.chdir(REPO)
    monkeypatch.setenv('MASKFLOWNET_DATASETS', 'sample_data/datasets.yaml')
    assert roots.dataset_root('chairs').resolve() == CHAIRS
    assert roots.dataset_root('sintel').resolve() == SINTEL
    assert roots.dataset_root('kitti2015').resolve() == KITTI15
    assert not roots.configured('things3d')


# ---------------------------------------------------------------- FlyingChairs

def test_chairs_split_membership_and_rgb_loading():
    train, val = chairs.list_samples(CHAIRS, 'train'), chairs.list_samples(CHAIRS, 'val')
    assert names(train) == ['chairs/00001'] and names(val) == ['chairs/00002']
    example = load_sample(train[0])
    assert example.img1.shape == (384, 512, 3) and example.img1.dtype == np.uint8
    assert example.flow.shape == (384, 512, 2) and example.flow.dtype == np.float32
    assert example.mask is None
    # RGB: the reverse of OpenCV's BGR decode of the same PPM
    np.testing.assert_array_equal(example.img1, cv2.imread(str(train[0].img1))[..., ::-1])
    np.testing.assert_array_equal(example.img2, cv2.imread(str(train[0].img2))[..., ::-1])
    np.testing.assert_array_equal(example.flow, flowio.read_flo(train[0].flow))
    assert load_sample(val[0]).img1.shape == (50, 50, 3)


def test_chairs_official_split_file_counts():
    labels = chairs.read_split_file(DATA / 'flyingchairs' / 'FlyingChairs_release' /
                                    'FlyingChairs_train_val.txt')
    assert len(labels) == 22872 and labels.count(1) == 22232 and labels.count(2) == 640


def test_chairs_missing_sample_file_names_the_path(tmp_path):
    shutil.copytree(CHAIRS, tmp_path / 'chairs')
    (tmp_path / 'chairs' / 'data' / '00002_flow.flo').unlink()
    assert names(chairs.list_samples(tmp_path / 'chairs', 'train')) == ['chairs/00001']
    with pytest.raises(UserError, match='00002_flow.flo: file not found'):
        chairs.list_samples(tmp_path / 'chairs', 'val')


def test_chairs_missing_or_bad_split_file(tmp_path):
    shutil.copytree(CHAIRS, tmp_path / 'chairs')
    split_file = tmp_path / 'chairs' / 'FlyingChairs_train_val.txt'
    split_file.write_text('1\n3\n')
    with pytest.raises(UserError, match='line 2 is .3.'):
        chairs.list_samples(tmp_path / 'chairs')
    split_file.unlink()
    with pytest.raises(UserError) as error:
        chairs.list_samples(tmp_path / 'chairs')
    assert str(split_file) in str(error.value)


# ---------------------------------------------------------------- Sintel

def test_sintel_sample_data_listing_and_rgb_loading_with_invalid_mask():
    samples = sintel.list_samples(SINTEL, 'training')
    assert names(samples) == ['sintel/clean/alley_1/frame_0002', 'sintel/final/alley_1/frame_0002']
    grouped = sintel.by_pass(samples)
    assert list(grouped) == ['clean', 'final'] and [len(v) for v in grouped.values()] == [1, 1]
    assert names(sintel.list_samples(SINTEL, 'training1', passes=('final',))) == \
        ['sintel/final/alley_1/frame_0002']
    assert sintel.list_samples(SINTEL, 'training2') == []
    for sample in samples:
        example = load_sample(sample)
        assert example.img1.shape == (436, 1024, 3) and example.img1.dtype == np.uint8
        np.testing.assert_array_equal(example.img1, cv2.imread(str(sample.img1))[..., ::-1])
        np.testing.assert_array_equal(example.img2, cv2.imread(str(sample.img2))[..., ::-1])
        assert example.flow.shape == (436, 1024, 2) and example.flow.dtype == np.float32
        invalid = cv2.imread(str(sample.mask), cv2.IMREAD_UNCHANGED)
        assert example.mask.shape == (436, 1024, 1) and example.mask.dtype == np.uint8
        np.testing.assert_array_equal(example.mask[..., 0], 255 - invalid)  # the original's rule
        assert set(np.unique(example.mask)) == {0, 255}


def fake_sintel(root, sequences, passes=('clean', 'final')):
    """A Sintel training tree whose sequences all hold the alley_1 pair (frames 2 and 3)."""
    for sequence in sequences:
        for pass_name in passes:
            for frame in ('frame_0002.png', 'frame_0003.png'):
                link(ALLEY / pass_name / 'alley_1' / frame,
                     root / 'training' / pass_name / sequence / frame)
        link(ALLEY / 'flow' / 'alley_1' / 'frame_0002.flo',
             root / 'training' / 'flow' / sequence / 'frame_0002.flo')
        link(ALLEY / 'invalid' / 'alley_1' / 'frame_0002.png',
             root / 'training' / 'invalid' / sequence / 'frame_0002.png')
    return root


def test_sintel_validation_sequence_lands_in_training2(tmp_path):
    root = fake_sintel(tmp_path / 'sintel', ['temple_3', 'cave_4', 'alley_1', 'ambush_2'])
    val = sintel.list_samples(root, 'training2')
    assert names(val) == ['sintel/clean/ambush_2/frame_0002', 'sintel/clean/cave_4/frame_0002',
                          'sintel/final/ambush_2/frame_0002', 'sintel/final/cave_4/frame_0002']
    train = sintel.list_samples(root, 'training1', passes=('clean',))
    assert names(train) == ['sintel/clean/alley_1/frame_0002', 'sintel/clean/temple_3/frame_0002']
    assert names(sintel.list_samples(root, 'training', passes=('clean',))) == [
        'sintel/clean/%s/frame_0002' % s for s in ('alley_1', 'ambush_2', 'cave_4', 'temple_3')]


def test_sintel_split_file_matches_the_original_positional_reading(tmp_path):
    """On a full-size tree, splitting by name equals the original's line-by-line reading."""
    root = tmp_path / 'sintel'
    for sequence, pairs in sintel.OFFICIAL_PAIRS.items():
        for frame in range(1, pairs + 2):
            touch(root / 'training' / 'clean' / sequence / f'frame_{frame:04d}.png')
        for frame in range(1, pairs + 1):
            touch(root / 'training' / 'flow' / sequence / f'frame_{frame:04d}.flo')
            touch(root / 'training' / 'invalid' / sequence / f'frame_{frame:04d}.png')
    everything = sintel.list_samples(root, 'training', passes=('clean',))
    labels = sintel.read_split_file(sintel.DEFAULT_SPLIT_FILE)
    assert len(everything) == len(labels) == 1041
    expected_val = [s.name for s, label in zip(everything, labels) if label == 2]
    val = sintel.list_samples(root, 'training2', passes=('clean',))
    assert names(val) == expected_val
    assert {n.split('/')[2] for n in names(val)} == VALIDATION_SEQUENCES
    assert len(val) + len(sintel.list_samples(root, 'training1', passes=('clean',))) == 1041


def test_sintel_custom_split_file_is_applied_by_position(tmp_path):
    root = fake_sintel(tmp_path / 'sintel', ['my_a', 'my_b', 'my_c'], passes=('clean',))
    split_file = tmp_path / 'split.txt'
    split_file.write_text('1\n2\n1\n')
    assert names(sintel.list_samples(root, 'training2', ('clean',), split_file)) == \
        ['sintel/clean/my_b/frame_0002']
    split_file.write_text('1\n2\n')
    with pytest.raises(UserError, match='has 2 entries but .* has 3 training pairs') as error:
        sintel.list_samples(root, 'training1', ('clean',), split_file)
    assert str(split_file) in str(error.value)
    with pytest.raises(UserError, match='not a pair of the official Sintel training set'):
        sintel.list_samples(root, 'training1', ('clean',))  # names unknown to the shipped split


def test_sintel_test_split_has_no_ground_truth(tmp_path):
    root = tmp_path / 'sintel'
    for frame in ('frame_0001.png', 'frame_0002.png', 'frame_0003.png'):
        link(ALLEY / 'final' / 'alley_1' / 'frame_0002.png', root / 'test' / 'final' / 'wall' / frame)
    samples = sintel.list_samples(root, 'test', passes=('final',))
    assert names(samples) == ['sintel/final/wall/frame_0001', 'sintel/final/wall/frame_0002']
    example = load_sample(samples[1])
    assert example.flow is None and example.mask is None and example.img1.shape == (436, 1024, 3)


def test_sintel_missing_ground_truth_names_the_path(tmp_path):
    root = fake_sintel(tmp_path / 'sintel', ['alley_1'])
    (root / 'training' / 'invalid' / 'alley_1' / 'frame_0002.png').unlink()
    with pytest.raises(UserError, match=r'invalid/alley_1/frame_0002\.png: file not found'):
        sintel.list_samples(root)
    with pytest.raises(UserError, match=r'test/clean: Sintel folder not found'):
        sintel.list_samples(root, 'test')


def test_shipped_sintel_split_file_marks_whole_validation_sequences():
    labels = sintel.read_split_file(sintel.DEFAULT_SPLIT_FILE)
    start, val = 0, set()
    for sequence, pairs in sintel.OFFICIAL_PAIRS.items():
        part = set(labels[start:start + pairs])
        assert len(part) == 1, sequence
        if part == {2}:
            val.add(sequence)
        start += pairs
    assert start == len(labels) and val == VALIDATION_SEQUENCES


# ---------------------------------------------------------------- KITTI

def fake_kitti(root, indices, edition='2015', split='training'):
    images = root / split / kitti.IMAGE_FOLDERS[edition]
    for index in indices:
        link(KITTI_FILES / 'image_2' / '000000_10.png', images / f'{index:06d}_10.png')
        link(KITTI_FILES / 'image_2' / '000000_11.png', images / f'{index:06d}_11.png')
        if split == 'training':
            link(KITTI_FILES / 'flow_occ' / '000000_10.png', root / split / 'flow_occ' / f'{index:06d}_10.png')
    return root


def test_kitti_parts_keep_the_last_file_and_sort(tmp_path):
    root = fake_kitti(tmp_path / 'k15', [50, 11, 0, 10, 199])
    assert names(kitti.list_samples(root, '2015', 'mixed')) == [
        'kitti2015/training/%06d' % i for i in (0, 10, 11, 50, 199)]
    assert names(kitti.list_samples(root, '2015', 'train')) == \
        ['kitti2015/training/000000', 'kitti2015/training/000050']
    assert names(kitti.list_samples(root, '2015', 'valid')) == [
        'kitti2015/training/%06d' % i for i in (10, 11, 199)]
    root12 = fake_kitti(tmp_path / 'k12', [0, 1], edition='2012')
    assert names(kitti.list_samples(root12, '2012', 'train')) == ['kitti2012/training/000001']
    assert kitti.list_samples(root12, '2012', 'train')[0].img1.parent.name == 'colored_0'


def test_kitti_testing_lists_pairs_without_flow(tmp_path):
    root = fake_kitti(tmp_path / 'k15', [0, 1, 2], split='testing')
    samples = kitti.list_samples(root, '2015', 'testing')
    assert names(samples) == ['kitti2015/testing/%06d' % i for i in (0, 1, 2)]
    example = load_sample(samples[-1])
    assert example.flow is None and example.mask is None


def test_kitti_loading_is_bgr_with_valid_bit_mask():
    [sample] = kitti.list_samples(KITTI15, '2015', 'train')
    example = load_sample(sample)
    np.testing.assert_array_equal(example.img1, cv2.imread(str(sample.img1)))  # BGR
    np.testing.assert_array_equal(example.img2, cv2.imread(str(sample.img2)))
    raw = cv2.imread(str(sample.flow), cv2.IMREAD_UNCHANGED)
    valid = raw[..., 0] > 0
    assert example.flow.shape == (375, 1242, 2) and example.flow.dtype == np.float32
    np.testing.assert_array_equal(example.flow[valid], (raw[valid][:, [2, 1]] - 32768.0) / 64)
    assert (example.flow[~valid] == 0).all()
    assert example.mask.shape == (375, 1242, 1) and example.mask.dtype == np.uint8
    np.testing.assert_array_equal(example.mask[..., 0], np.where(valid, 255, 0))


def test_kitti_crop_keeps_bottom_left():
    [plain] = kitti.list_samples(KITTI15, '2015')
    [cropped] = kitti.list_samples(KITTI15, '2015', crop=(370, 1224))
    full, crop = load_sample(plain), load_sample(cropped)
    for a, b in zip(full, crop):
        assert b.shape[:2] == (370, 1224)
        np.testing.assert_array_equal(b, a[5:, :1224])
    with pytest.raises(UserError, match='smaller than the crop 1300x370'):
        load_sample(dataclasses.replace(cropped, crop_bottom_left=(370, 1300)))


def original_sparse_resize(flow, valid, size_wh):
    """The original's resize written out independently: flow, then a valid-fraction division."""
    width, height = size_wh
    scale = (np.float32([width, height]) - 1) / (np.float32([flow.shape[1], flow.shape[0]]) - 1)
    flow = cv2.resize(flow, (width, height)) * scale
    occ = cv2.resize(valid.astype(np.float32), (width, height))[..., None]
    return flow / (occ + (occ == 0)), (occ * 255).astype(np.uint8)


def test_kitti_resize_matches_the_original_sparse_resize():
    [sample] = kitti.list_samples(KITTI15, '2015', resize_hw=(370, 1224))
    example = load_sample(sample)
    raw = cv2.imread(str(sample.flow), cv2.IMREAD_UNCHANGED)
    flow = ((raw[..., [2, 1]].astype(np.float32) - 32768) / 64)  # the file stores 0 when invalid
    expected_flow, expected_mask = original_sparse_resize(flow, raw[..., 0], (1224, 370))
    assert example.flow.shape == (370, 1224, 2) and example.mask.shape == (370, 1224, 1)
    np.testing.assert_array_equal(example.flow, expected_flow)
    np.testing.assert_array_equal(example.mask, expected_mask)
    np.testing.assert_array_equal(example.img1, cv2.resize(cv2.imread(str(sample.img1)), (1224, 370)))
    partial = (example.mask > 0) & (example.mask < 255)
    assert partial.any()  # soft weights at the borders of the valid regions
    # inside fully valid regions the flow is the plain bilinear resize, scaled per axis
    inside = example.mask[..., 0] == 255
    plain = cv2.resize(flow, (1224, 370)) * np.float32([1223 / 1241, 369 / 374])
    np.testing.assert_allclose(example.flow[inside], plain[inside], rtol=1e-5, atol=1e-4)


def test_kitti_missing_frame_names_the_path(tmp_path):
    root = fake_kitti(tmp_path / 'k15', [0, 1])
    (root / 'training' / 'image_2' / '000001_11.png').unlink()
    with pytest.raises(UserError, match=r'image_2/000001_11\.png: file not found'):
        kitti.list_samples(root, '2015')
    with pytest.raises(UserError, match='flow_occ: KITTI folder not found'):
        kitti.list_samples(tmp_path / 'nothing', '2012')


# ---------------------------------------------------------------- HD1K

def fake_hd1k(root, frames_per_sequence):
    """HD1K layout over the KITTI files (the same 16-bit flow format): one flow per frame."""
    for sequence, count in enumerate(frames_per_sequence):
        for frame in range(count):
            image = KITTI_FILES / 'image_2' / ('000000_10.png' if frame % 2 == 0 else '000000_11.png')
            link(image, root / 'hd1k_input' / 'image_2' / f'{sequence:06d}_{frame:04d}.png')
            link(KITTI_FILES / 'flow_occ' / '000000_10.png',
                 root / 'hd1k_flow_gt' / 'flow_occ' / f'{sequence:06d}_{frame:04d}.png')
    return root


def test_hd1k_listing_pairs_within_sequences_and_validation_position(tmp_path):
    root = fake_hd1k(tmp_path / 'hd1k', [7, 2])
    mixed = hd1k.list_samples(root, 'mixed')
    # the last flow of each sequence has no successor and is not used, like the original
    assert names(mixed) == ['hd1k/000000_%04d' % f for f in range(6)] + ['hd1k/000001_0000']
    assert mixed[4].img1.name == '000000_0004.png' and mixed[4].img2.name == '000000_0005.png'
    assert names(hd1k.list_samples(root, 'valid')) == ['hd1k/000000_0004']
    assert 'hd1k/000000_0004' not in names(hd1k.list_samples(root, 'train'))
    assert len(hd1k.list_samples(root, 'train')) == 6


def test_hd1k_trim_and_normalize_follow_the_original(tmp_path):
    root = fake_hd1k(tmp_path / 'hd1k', [2])
    [sample] = hd1k.list_samples(root)
    example = load_sample(sample)
    img1 = cv2.imread(str(sample.img1))[50:-50, 100:-100]
    img2 = cv2.imread(str(sample.img2))[50:-50, 100:-100]
    low, high = min(img1.min(), img2.min()), max(img1.max(), img2.max())
    expected = ((img1.astype(np.float64) - low) * (255.0 / (high - low))).astype(np.uint8)
    assert example.img1.shape == (275, 1042, 3)
    np.testing.assert_array_equal(example.img1, expected)  # BGR, stretched
    raw = cv2.imread(str(sample.flow), cv2.IMREAD_UNCHANGED)[50:-50, 100:-100]
    np.testing.assert_array_equal(example.mask[..., 0], np.where(raw[..., 0] > 0, 255, 0))
    plain = load_sample(dataclasses.replace(sample, normalize=False, trim_margins=None))
    np.testing.assert_array_equal(plain.img1, cv2.imread(str(sample.img1)))
    resized = load_sample(dataclasses.replace(sample, resize_hw=(436, 1024)))
    assert resized.img1.shape == (436, 1024, 3) and resized.flow.shape == (436, 1024, 2)
    assert resized.mask.shape == (436, 1024, 1)


def test_hd1k_normalize_stretches_the_pair_jointly(tmp_path):
    img1 = np.full((300, 1100, 3), 20, np.uint8)
    img1[:, :10] = 100
    img2 = np.full((300, 1100, 3), 120, np.uint8)
    img2[:, :10] = 70
    cv2.imwrite(str(tmp_path / 'a.png'), img1)
    cv2.imwrite(str(tmp_path / 'b.png'), img2)
    sample = Sample(name='n', img1=tmp_path / 'a.png', img2=tmp_path / 'b.png', flow=None,
                    channel_order='bgr', normalize=True)
    example = load_sample(sample)
    # joint min 20 and max 120, scaled by 255.0 / 100 and truncated like the original:
    # 20 -> 0, 70 -> 127, 100 -> 204, 120 -> 254 (100 * 2.55 is just below 255 in floating point)
    assert set(np.unique(example.img1)) == {0, 204} and set(np.unique(example.img2)) == {127, 254}


# ---------------------------------------------------------------- FlyingThings3D

CHAIRS2 = DATA / 'flyingchairs2_crop50' / 'train'


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


# ---------------------------------------------------------------- loading errors, sample data

@pytest.mark.parametrize('bad', [np.nan, np.inf, -np.inf])
def test_ground_truth_with_non_finite_values_is_refused_naming_the_file(tmp_path, bad):
    flow = flowio.read_flo(CHAIRS2 / '0000000-flow_01.flo').copy()
    flow[3, 4, 1] = bad
    flowio.write_flo(tmp_path / 'bad.flo', flow)
    link(CHAIRS2 / '0000000-img_0.png', tmp_path / 'a.png')
    link(CHAIRS2 / '0000000-img_1.png', tmp_path / 'b.png')
    sample = Sample('bad', tmp_path / 'a.png', tmp_path / 'b.png', tmp_path / 'bad.flo')
    with pytest.raises(UserError, match=r'bad\.flo: ground-truth flow holds 1 NaN or infinite'):
        load_sample(sample)

def test_mismatched_flow_size_names_the_flow_file():
    sample = Sample(name='bad', img1=CHAIRS / 'data' / '00002_img1.ppm',
                    img2=CHAIRS / 'data' / '00002_img2.ppm', flow=CHAIRS / 'data' / '00001_flow.flo')
    with pytest.raises(UserError, match=r'00001_flow\.flo: flow size 512x384 differs'):
        load_sample(sample)


def test_missing_image_at_load_time_names_the_path(tmp_path):
    sample = dataclasses.replace(chairs.list_samples(CHAIRS, 'val')[0], img2=tmp_path / 'gone.ppm')
    with pytest.raises(UserError, match='gone.ppm: file not found'):
        load_sample(sample)


SAMPLE_DATA_SOURCES = {
    'FlyingChairs_release/data/00001_img1.ppm': 'flyingchairs/FlyingChairs_release/data/00001_img1.ppm',
    'FlyingChairs_release/data/00001_img2.ppm': 'flyingchairs/FlyingChairs_release/data/00001_img2.ppm',
    'FlyingChairs_release/data/00001_flow.flo': 'flyingchairs/FlyingChairs_release/data/00001_flow.flo',
    'FlyingChairs_release/data/00002_img1.ppm': 'flyingchairs_crop50/FlyingChairs_release/data/00001_img1.ppm',
    'FlyingChairs_release/data/00002_img2.ppm': 'flyingchairs_crop50/FlyingChairs_release/data/00001_img2.ppm',
    'FlyingChairs_release/data/00002_flow.flo': 'flyingchairs_crop50/FlyingChairs_release/data/00001_flow.flo',
    'data_scene_flow/training/image_2/000000_10.png': 'kitti2015/training/image_2/000000_10.png',
    'data_scene_flow/training/image_2/000000_11.png': 'kitti2015/training/image_2/000000_11.png',
    'data_scene_flow/training/flow_occ/000000_10.png': 'kitti2015/training/flow_occ/000000_10.png',
}


def test_sample_data_files_are_the_documented_copies_and_small():
    data_files = [p for p in SAMPLES.rglob('*') if p.is_file()
                  and p.name not in ('PROVENANCE.md', 'datasets.yaml', 'FlyingChairs_train_val.txt')]
    sintel_files = {str(p.relative_to(SINTEL / 'training')) for p in data_files
                    if SINTEL in p.parents}
    expected_sintel = {str(p.relative_to(ALLEY)) for p in ALLEY.rglob('*') if p.is_file()}
    assert sintel_files == expected_sintel
    for name in expected_sintel:
        assert filecmp.cmp(SINTEL / 'training' / name, ALLEY / name, shallow=False), name
    for copy, source in SAMPLE_DATA_SOURCES.items():
        assert filecmp.cmp(SAMPLES / copy, DATA / source, shallow=False), copy
    assert len(data_files) == len(SAMPLE_DATA_SOURCES) + len(expected_sintel)
    assert (CHAIRS / 'FlyingChairs_train_val.txt').read_text() == '1\n2\n'
    assert sum(os.path.getsize(p) for p in SAMPLES.rglob('*') if p.is_file()) < 12e6
