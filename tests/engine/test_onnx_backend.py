"""engine/onnx_backend.py: the onnxruntime backend's flow against the MXNet backend's and the
original's golden outputs, its model cache (one export per size, a cache that does not match is
rebuilt, a failed export leaves nothing), a cached prediction without MXNet, and its one-line
failures."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import NETWORKS, assert_close
from common.config import Config
from common.errors import UserError
from engine import onnx_backend, onnx_export
from engine.failures import OutOfMemory, memory_guard
from engine.onnx_backend import ModelCache, OnnxPipeline, check_backend, parse_device

pytestmark = pytest.mark.slow   # every test here exports a network or runs a command

pytest.importorskip('onnxruntime')

REPO = Path(__file__).resolve().parent.parent.parent
FLOW_TOL = dict(atol=1e-3, rtol=1e-5)   # as tests/test_parity.py
MASK_TOL = dict(atol=1e-4, rtol=1e-5)


def onnx_pipeline(network, checkpoint, folder, **kwargs):
    config = Config({'network': {'class': network}})
    cache = ModelCache(config, checkpoint, onnx_export.file_sha256(checkpoint), str(folder))
    return OnnxPipeline(config, checkpoint, cache=cache, **kwargs)


@pytest.fixture(scope='module')
def onnx_pipes(tmp_path_factory, golden_checkpoint, pipelines):
    """network -> an OnnxPipeline of the golden weights that keeps one size loaded and exports
    with the session's MXNet pipeline (the test process holds many networks already)."""
    folder = tmp_path_factory.mktemp('onnx_cache')
    made = {}

    def get(network):
        if network not in made:
            pipe = onnx_pipeline(network, golden_checkpoint(network), folder, max_sessions=1)
            pipe._exporter = pipelines(network)
            made[network] = pipe
        return made[network]
    yield get
    made.clear()
    release_freed_memory()


def release_freed_memory():
    """Hand the memory onnxruntime freed (malloc's, see OnnxPipeline._open) back to the system,
    so that the test process does not carry it into the modules after this one."""
    import ctypes
    import gc
    gc.collect()
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):   # not glibc
        pass


# --- parity --------------------------------------------------------------------------------

@pytest.mark.parametrize('network', NETWORKS)
def test_flow_matches_mxnet_and_the_original(network, onnx_pipes, pipelines, golden):
    pipe, mxnet = onnx_pipes(network), pipelines(network)
    inputs, gold = golden(None, 'inputs'), golden(network, 'predict')
    a, b = inputs['img1_rgb_uint8'], inputs['img2_rgb_uint8']
    for resize, key in ((None, 'flow'), ((256, 576), 'resize256x576_flow')):
        flow, occ_mask, warped = pipe.predict_pair(a, b, resize=resize)
        assert warped is None and flow.dtype == np.float32 and flow.shape == (218, 512, 2)
        expected, expected_mask, _ = mxnet.predict_pair(a, b, resize=resize)
        assert_close(flow, gold[key], what='%s vs the original' % key, **FLOW_TOL)
        assert_close(flow, expected, what='%s vs mxnet' % key, **FLOW_TOL)
        assert_close(occ_mask, expected_mask, what='occ_mask vs mxnet', **MASK_TOL)
        if network == 'MaskFlownet_S':
            mask_key = 'occ_mask' if resize is None else 'resize256x576_occ_mask'
            assert_close(occ_mask, gold[mask_key], what='occ_mask vs the original', **MASK_TOL)
    results = list(pipe.predict([a, b], [b, a], batch_size=2))
    for k, (flow, _, _) in enumerate(results):
        assert_close(flow, gold['batch2_flow'][k], what='batch2_flow[%d]' % k, **FLOW_TOL)


@pytest.mark.parametrize('network', NETWORKS)
@pytest.mark.parametrize('size, resize', [((64, 128), None), ((100, 150), None),
                                          ((100, 150), (64, 192))])
def test_flow_matches_mxnet_at_other_sizes(network, size, resize, onnx_pipes, pipelines, golden):
    inputs = golden(None, 'inputs')
    a, b = (inputs[k][30:30 + size[0], 100:100 + size[1]] for k in ('img1_rgb_uint8',
                                                                     'img2_rgb_uint8'))
    flow, occ_mask, _ = onnx_pipes(network).predict_pair(a, b, resize=resize)
    expected, expected_mask, _ = pipelines(network).predict_pair(a, b, resize=resize)
    assert_close(flow, expected, what='flow', **FLOW_TOL)
    assert_close(occ_mask, expected_mask, what='occ_mask', **MASK_TOL)


def test_validation_metrics_match_the_original(onnx_pipes, golden):
    from engine.evaluate import per_sample_metrics
    inputs, gold = golden(None, 'inputs'), golden('MaskFlownet_S', 'validate')
    a, b = inputs['img1_rgb_uint8'], inputs['img2_rgb_uint8']
    labels, masks = list(gold['label_xy']), list(gold['mask_uint8'])
    values = per_sample_metrics(onnx_pipes('MaskFlownet_S'), [a, b], [b, a], labels, masks,
                                batch_size=2, metrics=('epe', 'kitti'))
    assert np.mean(values['epe']) == pytest.approx(gold['epe_bs2'], rel=1e-5)
    assert np.mean(values['kitti']) == pytest.approx(gold['kitti_fl'], abs=1e-6)


def test_the_weights_sha256_is_the_mxnet_backends(onnx_pipes, pipelines):
    from engine.settings import weights_sha256
    assert onnx_pipes('MaskFlownet_S').weights_sha256() == \
        weights_sha256(pipelines('MaskFlownet_S').network)


# --- the cache -----------------------------------------------------------------------------

@pytest.fixture
def counted_exports(monkeypatch):
    """The list of image sizes exported while the test runs."""
    exported = []
    export = onnx_export.export_onnx

    def counting(pipe, image_size, resize, path, metadata):
        exported.append(tuple(image_size))
        return export(pipe, image_size, resize, path, metadata)
    monkeypatch.setattr(onnx_export, 'export_onnx', counting)
    return exported


@pytest.fixture
def pair():
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)


def test_a_size_exports_once(tmp_path, golden_checkpoint, counted_exports, pair):
    checkpoint = golden_checkpoint('MaskFlownet_S')
    pipe = onnx_pipeline('MaskFlownet_S', checkpoint, tmp_path, max_sessions=1)
    first = pipe.predict_pair(*pair)[0]
    pipe.predict_pair(*pair)
    pipe.predict_pair(pair[0][:60], pair[1][:60])
    assert list(pipe._sessions) == [((60, 64), (64, 64))]   # one kept: the newest
    assert (pipe.predict_pair(*pair)[0] == first).all()      # back from the cache
    assert counted_exports == [(64, 64), (60, 64)]
    again = onnx_pipeline('MaskFlownet_S', checkpoint, tmp_path)
    assert (again.predict_pair(*pair)[0] == first).all()
    assert counted_exports == [(64, 64), (60, 64)]
    assert len([p for p in os.listdir(tmp_path) if p.endswith('.onnx')]) == 2


def _damage(kind, model, record):
    if kind == 'corrupt':      # one byte flipped deep inside the weights
        data = bytearray(model.read_bytes())
        data[len(data) // 2] ^= 0xFF
        model.write_bytes(bytes(data))
    elif kind == 'truncated':
        model.write_bytes(model.read_bytes()[:1000])
    elif kind == 'record missing':
        record.unlink()
    elif kind == 'record unreadable':
        record.write_text('{"fields": ')
    elif kind == 'a link to an endless device':   # read forever before
        model.unlink()
        model.symlink_to('/dev/zero')
    elif kind == 'other key':
        data = json.loads(record.read_text())
        data['fields']['checkpoint_sha256'] = '0' * 64
        record.write_text(json.dumps(data))


@pytest.mark.parametrize('kind', ['corrupt', 'truncated', 'record missing', 'record unreadable',
                                  'a link to an endless device', 'other key'])
def test_a_cache_that_does_not_match_is_rebuilt(tmp_path, golden_checkpoint, counted_exports,
                                                pair, kind):
    checkpoint = golden_checkpoint('MaskFlownet_S')
    first = onnx_pipeline('MaskFlownet_S', checkpoint, tmp_path).predict_pair(*pair)[0]
    model, = tmp_path.glob('*.onnx')
    record, = tmp_path.glob('*.json')
    _damage(kind, model, record)
    again = onnx_pipeline('MaskFlownet_S', checkpoint, tmp_path)
    assert (again.predict_pair(*pair)[0] == first).all()
    assert counted_exports == [(64, 64), (64, 64)]
    assert again.cache.load((64, 64), (64, 64)) is not None   # verifies again
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([model.name, record.name])


def test_a_failed_export_leaves_the_cache_as_it_was(tmp_path, golden_checkpoint, break_export,
                                                     pair):
    break_export(KeyError('GridGenerator'))
    pipe = onnx_pipeline('MaskFlownet_S', golden_checkpoint('MaskFlownet_S'), tmp_path)
    with pytest.raises(UserError) as raised:
        pipe.predict_pair(*pair)
    assert str(raised.value) == ("exporting MaskFlownet_S for 64x64 images to ONNX failed "
                                 "(KeyError: 'GridGenerator')")
    assert list(tmp_path.iterdir()) == []


def test_a_model_that_onnxruntime_cannot_load_is_one_line(tmp_path, golden_checkpoint,
                                                           monkeypatch, pair):
    def not_a_model(onnx, pipe, image_size, resize, path, metadata):
        with open(path, 'wb') as f:
            f.write(b'not a model')
    monkeypatch.setattr(onnx_export, '_export', not_a_model)
    pipe = onnx_pipeline('MaskFlownet_S', golden_checkpoint('MaskFlownet_S'), tmp_path)
    with pytest.raises(UserError, match=r'\.onnx: onnxruntime cannot load this model \('):
        pipe.predict_pair(*pair)


CACHED_RUN = '''
import sys
sys.path.insert(0, {repo!r})
import predict_new_data
cached = sys.argv.pop(1) == 'cached'
status = predict_new_data.main(sys.argv[1:])
assert status == 0, status
assert ('mxnet' in sys.modules) != cached   # the first run exports with MXNet
print('mxnet' if 'mxnet' in sys.modules else 'no mxnet')
'''


def test_a_cached_prediction_loads_no_mxnet(tmp_path, golden_checkpoint, golden):
    import cv2
    inputs = golden(None, 'inputs')
    paths = []
    for k, key in enumerate(['img1_rgb_uint8', 'img2_rgb_uint8']):
        paths.append(tmp_path / ('%d.png' % k))
        cv2.imwrite(str(paths[-1]), inputs[key][:64, :128])
    checkpoint = golden_checkpoint('MaskFlownet_S')
    cache = tmp_path / 'cache'
    env = dict(os.environ, OMP_NUM_THREADS='1', MASKFLOWNET_ONNX_CACHE=str(cache))
    args = ['MaskFlownet_S.yaml', '--image_1', str(paths[0]), '--image_2', str(paths[1]),
            '-c', str(checkpoint), '--backend', 'onnxruntime']
    command = [sys.executable, '-c', CACHED_RUN.format(repo=str(REPO))]
    first = subprocess.run(command + ['export', str(tmp_path / 'a.npy')] + args, cwd=tmp_path,
                           capture_output=True, text=True, env=env)
    assert first.returncode == 0 and first.stdout.endswith('\nmxnet\n'), first.stderr
    assert len(list(cache.glob('*.onnx'))) == 1
    second = subprocess.run(command + ['cached', str(tmp_path / 'b.npy')] + args, cwd=tmp_path,
                            capture_output=True, text=True, env=env)
    assert second.returncode == 0 and second.stdout.endswith('no mxnet\n'), second.stderr
    assert (np.load(tmp_path / 'a.npy') == np.load(tmp_path / 'b.npy')).all()


# --- one-line failures ---------------------------------------------------------------------

def test_missing_onnxruntime_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, 'onnxruntime', None)
    with pytest.raises(UserError, match='^--backend onnxruntime: the onnxruntime package is not '
                                        r'installed \(pip install -r requirements.txt'):
        check_backend('onnxruntime')
    assert check_backend('mxnet') is None


def test_gpus_need_onnxruntimes_cuda_provider():
    import onnxruntime
    assert parse_device('') == onnx_backend.Device('cpu')
    with pytest.raises(UserError, match='^-g 0,1: the onnxruntime backend runs on one GPU'):
        parse_device('0,1')
    with pytest.raises(UserError, match="^-g x: expected a GPU id such as '0'"):
        parse_device('x')
    if 'CUDAExecutionProvider' in onnxruntime.get_available_providers():
        assert parse_device('0') == onnx_backend.Device('gpu', 0)
    else:
        with pytest.raises(UserError) as raised:
            parse_device('0')
        assert str(raised.value).startswith('-g 0: this onnxruntime (%s) has no CUDA provider; '
                                            % onnxruntime.__version__)
        assert 'onnxruntime-gpu[cuda,cudnn]==1.26.0' in str(raised.value)


def test_running_out_of_memory_is_one_line(onnx_pipes, pair, monkeypatch):
    pipe = onnx_pipes('MaskFlownet_S')
    pipe.session(pair[0].shape[:2])   # exported and loaded first

    class Failing:
        def run(self, *args):
            raise RuntimeError('[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Non-zero status '
                               'code returned while running Conv node. bad_alloc')
    monkeypatch.setitem(pipe._sessions, ((64, 64), (64, 64)), Failing())   # the one kept
    with pytest.raises(OutOfMemory, match='^out of memory while predicting; reduce --resize$'):
        with memory_guard('predicting', '--resize'):
            pipe.predict_pair(*pair)


def test_the_cache_variable_is_known_and_moves_the_cache(monkeypatch, tmp_path):
    from common.environment import VARIABLES, check_environment
    assert onnx_backend.CACHE_VARIABLE in VARIABLES
    monkeypatch.setenv(onnx_backend.CACHE_VARIABLE, str(tmp_path))
    check_environment()
    assert onnx_backend.cache_folder() == str(tmp_path)
    monkeypatch.delenv(onnx_backend.CACHE_VARIABLE)
    assert onnx_backend.cache_folder() == os.path.join('weights', 'onnx')


@pytest.mark.parametrize('where', ['a file', 'an unwritable folder'])
def test_a_cache_that_cannot_be_written_is_found_at_the_start(monkeypatch, tmp_path, where):
    """It was found after the first export's seconds of work."""
    cache = tmp_path / 'cache'
    if where == 'a file':
        cache.write_text('')
    else:
        cache.mkdir()
        monkeypatch.setattr(os, 'access', lambda path, mode: os.fspath(path) != str(cache))
    monkeypatch.setenv(onnx_backend.CACHE_VARIABLE, str(cache))
    with pytest.raises(UserError) as raised:
        check_backend('onnxruntime')
    assert str(raised.value).endswith("(the onnxruntime backend's model cache; "
                                      "MASKFLOWNET_ONNX_CACHE moves it)")
    assert str(cache) in str(raised.value)


def test_a_checkpoint_changed_after_loading_is_not_exported_under_its_old_key(
        tmp_path, golden_checkpoint, counted_exports, pair):
    """The cache key was the file's sha256 at loading, the exported weights the file's at the
    first export: a model of other weights would have been cached under the old key."""
    checkpoint = tmp_path / 'mine.params'
    checkpoint.write_bytes(Path(golden_checkpoint('MaskFlownet_S')).read_bytes())
    pipe = onnx_pipeline('MaskFlownet_S', checkpoint, tmp_path / 'cache')
    with open(checkpoint, 'ab') as f:
        f.write(b'\0')
    with pytest.raises(UserError, match=r'mine\.params: changed since it was loaded'):
        pipe.predict_pair(*pair)
    assert counted_exports == [] and not (tmp_path / 'cache').exists()


def test_a_record_of_another_network_does_not_lend_its_weights_sha256(tmp_path):
    """Records were picked by file name prefix: 'MaskFlownet_' matches MaskFlownet_S's too."""
    checkpoint = tmp_path / 'w.params'
    checkpoint.write_bytes(b'weights')
    sha = onnx_export.file_sha256(checkpoint)
    caches = {network: ModelCache(Config({'network': {'class': network}}), checkpoint, sha,
                                  str(tmp_path))
              for network in ('MaskFlownet_S', 'MaskFlownet')}
    s_cache = caches['MaskFlownet_S']
    model, record = s_cache.paths((64, 64), (64, 64))
    Path(record).write_text(json.dumps({'fields': s_cache.fields((64, 64), (64, 64)),
                                        'weights_sha256': 'of MaskFlownet_S'}))
    assert os.path.basename(record).startswith('MaskFlownet_')
    assert caches['MaskFlownet'].recorded_weights_sha256() is None
    assert s_cache.recorded_weights_sha256() == 'of MaskFlownet_S'


def test_onnxruntimes_own_error_lines_stay_off_standard_error(capfd):
    """A failing run printed onnxruntime's coloured '[E:onnxruntime:...]' line before ours."""
    from onnx import TensorProto, helper
    graph = helper.make_graph(   # a Reshape of 7 values to 3 x 5: fails when it runs
        [helper.make_node('Reshape', ['x', 's'], ['y'])], 'g',
        [helper.make_tensor_value_info('x', TensorProto.FLOAT, [None])],
        [helper.make_tensor_value_info('y', TensorProto.FLOAT, None)],
        [helper.make_tensor('s', TensorProto.INT64, [2], [3, 5])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 16)], ir_version=8)
    pipe = OnnxPipeline.__new__(OnnxPipeline)   # only what _open reads
    pipe.ort, pipe.device = onnx_backend.import_onnxruntime(), onnx_backend.Device('cpu')
    session = pipe._open(model.SerializeToString(), 'reshape.onnx')
    with pytest.raises(Exception, match='cannot be reshaped'):
        session.run(None, {'x': np.zeros(7, np.float32)})
    assert capfd.readouterr().err == ''
