"""reader/chairs.py: FlyingChairs listing, its split file and loading."""
import shutil

import cv2
import numpy as np
import pytest

from common.errors import UserError
from reader import chairs, flowio
from reader.sample import load_sample
from tests.helpers import DATASETS, SAMPLE, names

pytestmark = pytest.mark.usefixtures('no_root_environment')

CHAIRS = SAMPLE / 'FlyingChairs_release'


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
    labels = chairs.read_split_file(DATASETS / 'flyingchairs' / 'FlyingChairs_release' /
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
