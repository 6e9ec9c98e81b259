"""reader/sample.py: loading a sample refuses bad ground truth and missing files, naming them."""
import dataclasses
import re

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


def test_validation_files_are_read_in_full_at_the_start(tmp_path):
    """check_sets read the images' headers only: a damaged validation image was found at the
    first validation, after training had started."""
    from reader.sample import check_sets
    clean = SAMPLE / 'MPI-Sintel-complete' / 'training' / 'clean' / 'alley_1'
    flow = SAMPLE / 'MPI-Sintel-complete' / 'training' / 'flow' / 'alley_1' / 'frame_0002.flo'
    img1 = clean / 'frame_0002.png'
    data = (clean / 'frame_0003.png').read_bytes()
    (tmp_path / 'cut.png').write_bytes(data[:-20])
    (tmp_path / 'tail.png').write_bytes(data + b'junk')
    check_sets({'set': [Sample('ok', img1, clean / 'frame_0003.png', flow)]})
    for name, problem in (('cut.png', 'truncated PNG file'),
                          ('tail.png', 'corrupt (4 bytes after its end) PNG file')):
        with pytest.raises(UserError, match=r'^%s: %s' % (tmp_path / name, re.escape(problem))):
            check_sets({'set': [Sample('x', img1, tmp_path / name, flow)]})
