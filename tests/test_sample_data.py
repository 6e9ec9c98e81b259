"""sample_data/: the bundled samples are documented copies of tests/data/datasets, and small."""
import filecmp
import os

from tests.helpers import ALLEY, DATASETS, SAMPLE

CHAIRS = SAMPLE / 'FlyingChairs_release'
SINTEL = SAMPLE / 'MPI-Sintel-complete'


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
    data_files = [p for p in SAMPLE.rglob('*') if p.is_file()
                  and p.name not in ('PROVENANCE.md', 'datasets.yaml', 'FlyingChairs_train_val.txt')]
    sintel_files = {str(p.relative_to(SINTEL / 'training')) for p in data_files
                    if SINTEL in p.parents}
    expected_sintel = {str(p.relative_to(ALLEY)) for p in ALLEY.rglob('*') if p.is_file()}
    assert sintel_files == expected_sintel
    for name in expected_sintel:
        assert filecmp.cmp(SINTEL / 'training' / name, ALLEY / name, shallow=False), name
    for copy, source in SAMPLE_DATA_SOURCES.items():
        assert filecmp.cmp(SAMPLE / copy, DATASETS / source, shallow=False), copy
    assert len(data_files) == len(SAMPLE_DATA_SOURCES) + len(expected_sintel)
    assert (CHAIRS / 'FlyingChairs_train_val.txt').read_text() == '1\n2\n'
    assert sum(os.path.getsize(p) for p in SAMPLE.rglob('*') if p.is_file()) < 12e6
