"""reader/sintel.py: MPI-Sintel listing, MaskFlownet's train/validation split and loading.

Fake trees are built in tmp_path from symlinks to the real files in tests/data/datasets, so
that the layouts (not the pixels) are what a test varies."""
import cv2
import numpy as np
import pytest

from common.errors import UserError
from reader import sintel
from reader.sample import load_sample
from tests.helpers import ALLEY, SAMPLE, fake_sintel, link, names, touch

pytestmark = pytest.mark.usefixtures('no_root_environment')

SINTEL = SAMPLE / 'MPI-Sintel-complete'
VALIDATION_SEQUENCES = {'ambush_2', 'ambush_6', 'bamboo_2', 'cave_4', 'market_6', 'temple_2'}


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
