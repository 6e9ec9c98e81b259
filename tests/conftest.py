"""Shared fixtures: golden files of the original implementation, checkpoints and pipelines built
from them, a generated clip; plain helpers are in tests/helpers.py."""
import gc
import os
import shutil
import subprocess

# Single-threaded like the golden run: results are then reproducible bit for bit.
os.environ.setdefault('OMP_NUM_THREADS', '1')
# One process runs every test, at many input sizes: oneDNN's primitive cache (unbounded by
# default) would otherwise keep a primitive and its buffers for every shape ever seen.
os.environ.setdefault('MXNET_MKLDNN_CACHE_NUM', '16')

import numpy as np
import pytest

from tests.helpers import (FRAMES, PARITY, SAMPLE, VIDEO_FRAMES, decode_video, encode_test_video,
                           moving_pattern, write_clip, write_deterministic_checkpoint,
                           write_small_chairs_config)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    try:
        return (yield)
    finally:
        # Pipelines hold reference cycles that keep their graphs' memory until collected: free it.
        gc.collect()


def pytest_collection_finish(session):
    # The imports' objects live as long as the session: keep them out of those collections.
    gc.freeze()


@pytest.fixture(scope='session')
def golden_checkpoint(tmp_path_factory):
    """network name -> path of the deterministic checkpoint built from its manifest."""
    folder = tmp_path_factory.mktemp('checkpoints')
    cache = {}

    def get(network):
        if network not in cache:
            cache[network] = write_deterministic_checkpoint(network, folder / ('%s.params' % network))
        return cache[network]
    return get


@pytest.fixture(scope='session')
def golden():
    """golden('MaskFlownet_S', 'predict') -> the dict of arrays in that golden file."""
    def load(network, kind):
        name = 'inputs.npz' if kind == 'inputs' else '%s.%s.npz' % (network, kind)
        with np.load(PARITY / name) as data:
            return {k: data[k] for k in data.files}
    return load


@pytest.fixture(scope='session')
def pipelines(golden_checkpoint):
    """network name -> a CPU Pipeline with the deterministic golden weights loaded (cached)."""
    from common.config import Config
    from network.pipeline import Pipeline
    cache = {}

    def get(network):
        if network not in cache:
            # Cached for the whole session: its graphs do not keep their memory between calls.
            pipe = Pipeline(Config({'network': {'class': network}}), keep_graph_memory=False)
            pipe.load(golden_checkpoint(network))
            cache[network] = pipe
        return cache[network]
    return get


@pytest.fixture(scope='module')
def s_pipe(golden_checkpoint):
    """A MaskFlownet-S Pipeline with the golden weights (default settings), one per module."""
    from common.config import Config
    from network.pipeline import Pipeline
    pipe = Pipeline(Config({'network': {'class': 'MaskFlownet_S'}}))
    pipe.load(golden_checkpoint('MaskFlownet_S'))
    return pipe


@pytest.fixture(scope='module')
def predict_pipe(golden_checkpoint):
    """The pipeline predict_new_data.py loads for MaskFlownet_S and the golden weights."""
    from engine import predict
    return predict.load_pipeline('MaskFlownet_S', golden_checkpoint('MaskFlownet_S'))[0]


@pytest.fixture(scope='module')
def clip(tmp_path_factory):
    """A short generated video (tests.helpers.moving_pattern), one per module."""
    return write_clip(tmp_path_factory.mktemp('clip') / 'moving.mp4', moving_pattern(FRAMES))


@pytest.fixture(scope='module')
def good_file(tmp_path_factory):
    """A real MaskFlownet-S checkpoint and its blob id as git itself computes it."""
    folder = tmp_path_factory.mktemp('good')
    path = write_deterministic_checkpoint('MaskFlownet_S', folder / 'g.params')
    blob_id = subprocess.run(['git', 'hash-object', str(path)], capture_output=True, text=True,
                             check=True).stdout.strip()
    return path, blob_id


@pytest.fixture
def no_root_environment(monkeypatch):
    """No dataset root from the environment: neither MASKFLOWNET_DATASETS nor a per-dataset
    variable (the reader tests name their roots themselves)."""
    from reader import roots
    monkeypatch.delenv(roots.ROOTS_FILE_ENV, raising=False)
    for key in roots.DATASETS:
        monkeypatch.delenv(roots.env_var(key), raising=False)


@pytest.fixture(scope='session')
def damaged_videos(tmp_path_factory):
    """good.mp4; mid.mp4, whose frames all decode but one only with ffmpeg's concealment; and
    cut.mp4, whose container announces 30 frames but whose data ends early."""
    folder = tmp_path_factory.mktemp('videos')
    good = encode_test_video(folder / 'good.mp4', '-g', '30')
    data = good.read_bytes()
    for percent in range(40, 95, 3):   # flip bits inside a later frame's slice data
        offset = len(data) * percent // 100
        mid = folder / 'mid.mp4'
        mid.write_bytes(data[:offset] + bytes(b ^ 1 for b in data[offset:offset + 8])
                        + data[offset + 8:])
        count, damaged = decode_video(mid)
        if count == VIDEO_FRAMES and damaged:
            break
    else:
        pytest.fail('no damage found that leaves every frame decodable')
    whole = encode_test_video(folder / 'faststart.mp4', '-movflags', '+faststart').read_bytes()
    cut = folder / 'cut.mp4'
    cut.write_bytes(whole[:len(whole) * 6 // 10])
    return {'good': good, 'mid': mid, 'cut': cut, 'damaged_frame': damaged[0][0]}


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """An empty working directory, the current one, with a chairs-only dataset roots file
    (MASKFLOWNET_DATASETS: fast validation) and small.yaml (128 x 192 chairs crops)."""
    roots = tmp_path / 'datasets.yaml'
    roots.write_text('chairs: %s\n' % (SAMPLE / 'FlyingChairs_release'))
    monkeypatch.setenv('MASKFLOWNET_DATASETS', str(roots))
    monkeypatch.chdir(tmp_path)
    write_small_chairs_config(tmp_path)
    return tmp_path


@pytest.fixture
def chairs_copy(tmp_path, monkeypatch):
    """The current directory, with a copy of the chairs samples (chairs/, which a test may
    damage) as its only dataset (roots.yaml, MASKFLOWNET_DATASETS) and small.yaml (128 x 192
    crops)."""
    chairs = tmp_path / 'chairs'
    shutil.copytree(SAMPLE / 'FlyingChairs_release', chairs)
    roots = tmp_path / 'roots.yaml'
    roots.write_text('chairs: %s\n' % chairs)
    monkeypatch.setenv('MASKFLOWNET_DATASETS', str(roots))
    monkeypatch.chdir(tmp_path)
    write_small_chairs_config(tmp_path)
    return tmp_path


@pytest.fixture
def no_network_built(monkeypatch):
    """Fails the test if a network is built: for inputs that must be checked before one is."""
    import network.pipeline

    def refuse(*args, **kwargs):
        raise AssertionError('a network was built before the inputs were checked')
    monkeypatch.setattr(network.pipeline.Pipeline, '__init__', refuse)


@pytest.fixture
def break_export(monkeypatch):
    """``break_export(error)``: every ONNX export from then on writes half a model and raises
    ``error``."""
    from engine import onnx_export

    def install(error):
        def broken(onnx, pipe, image_size, resize, path, metadata):
            with open(path, 'wb') as f:
                f.write(b'half a model')
            raise error
        monkeypatch.setattr(onnx_export, '_export', broken)
    return install
