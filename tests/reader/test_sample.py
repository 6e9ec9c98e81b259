"""reader/sample.py: loading a sample refuses bad ground truth and missing files, naming them."""
import dataclasses

import numpy as np
import pytest

from common.errors import UserError
from reader import chairs, flowio
from reader.sample import Sample, load_sample
from tests.helpers import CHAIRS2, SAMPLE, link

pytestmark = pytest.mark.usefixtures('no_root_environment')

CHAIRS = SAMPLE / 'FlyingChairs_release'


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
