"""engine/api.py, the Python API: docs/api.md's example runs and equals the command line's
output; channel orders, batches and sizes; the backend interface."""
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

import predict_new_data
from common.errors import UserError
from engine import api
from reader import flowio

REPO = Path(__file__).resolve().parent.parent.parent
PARITY = REPO / 'tests' / 'data' / 'parity'


def small_pair(folder, rows=slice(60, 124), cols=slice(200, 296)):
    """64 x 96 crops of the parity images, as frame_0001.png and frame_0002.png."""
    names = []
    for k, source in enumerate(('img1.png', 'img2.png'), start=1):
        names.append(folder / ('frame_%04d.png' % k))
        cv2.imwrite(str(names[-1]), cv2.imread(str(PARITY / source))[rows, cols])
    return names


def docs_example():
    text = (REPO / 'docs' / 'api.md').read_text()
    return re.search(r'```python\n(.*?)```', text, re.S).group(1)


def test_the_docs_example_runs_and_equals_the_command_line(tmp_path, monkeypatch,
                                                          golden_checkpoint):
    (tmp_path / 'weights').mkdir()
    shutil.copy(golden_checkpoint('MaskFlownet_S'), tmp_path / 'weights' / 'mine_1000.params')
    small_pair(tmp_path)
    monkeypatch.chdir(tmp_path)
    example = {}
    exec(compile(docs_example(), 'docs/api.md', 'exec'), example)
    flow, occ, model = example['flow'], example['occ'], example['model']
    assert model.loaded.checkpoint == 'weights/mine_1000.params'
    assert model.loaded.run_id == 'mine' and model.loaded.steps == 1000

    assert predict_new_data.main(['flow.flo', 'MaskFlownet_S.yaml', '--image_1', 'frame_0001.png',
                                  '--image_2', 'frame_0002.png', '-c', 'weights/mine_1000.params',
                                  '--occ_mask', 'occ.png']) == 0
    cli_flow = flowio.read_flo('flow.flo')
    assert flow.shape == (64, 96, 2) and flow.dtype == np.float32
    np.testing.assert_array_equal(flow, cli_flow)   # one pair, one network call: the same
    assert occ.shape == (64, 96) and occ.dtype == np.float32 and 0 <= occ.min() <= occ.max() <= 1
    np.testing.assert_array_equal(np.round(occ * 255).astype(np.uint8),
                                  cv2.imread('occ.png', cv2.IMREAD_UNCHANGED))
    # the batch of two: the pair and its reverse
    flows, occs = example['flows'], example['occs']
    assert len(flows) == len(occs) == 2
    np.testing.assert_allclose(flows[0], cli_flow, atol=1e-4)
    assert np.abs(flows[1] - cli_flow).mean() > 0.01   # the reverse pair's flow differs


@pytest.fixture(scope='module')
def model(golden_checkpoint):
    return api.load_model('MaskFlownet_S.yaml', str(golden_checkpoint('MaskFlownet_S')))


@pytest.fixture(scope='module')
def pair(tmp_path_factory):
    return [cv2.imread(str(p)) for p in small_pair(tmp_path_factory.mktemp('pair'))]


def test_channel_orders_and_grayscale(model, pair):
    bgr = model.predict(*pair)[0]
    rgb = model.predict(pair[0][..., ::-1], pair[1][..., ::-1], channel_order='rgb')[0]
    np.testing.assert_array_equal(rgb, bgr)
    swapped = model.predict(pair[0][..., ::-1].copy(), pair[1][..., ::-1].copy())[0]
    assert np.abs(swapped - bgr).max() > 1e-3   # the order matters to the network
    gray = [cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) for image in pair]
    np.testing.assert_array_equal(model.predict(*gray)[0],
                                  model.predict(*[np.dstack([g] * 3) for g in gray])[0])


def test_batches_of_mixed_sizes_equal_pairs_one_at_a_time(model, pair):
    small = [image[:50, :70] for image in pair]
    img1s, img2s = [pair[0], small[0], small[1], pair[1]], [pair[1], small[1], small[0], pair[0]]
    flows, occs = model.predict_batch(img1s, img2s, batch_size=2, resize=None)
    for k in range(4):
        flow, occ = model.predict(img1s[k], img2s[k])
        assert flows[k].shape == img1s[k].shape[:2] + (2,)
        np.testing.assert_allclose(flows[k], flow, atol=1e-4)
        np.testing.assert_allclose(occs[k], occ, atol=1e-5)
    stacked = model.predict_batch(np.stack(img1s[:1]), np.stack(img2s[:1]))[0][0]
    np.testing.assert_allclose(stacked, flows[0], atol=1e-4)
    at_size = model.predict(*pair, resize='128,192')[0]
    assert at_size.shape == (64, 96, 2) and np.abs(at_size - flows[0]).max() > 1e-3
    assert model.predict_batch([], []) == [[], []]


class RecordingBackend:
    """A backend of the documented interface that returns a known flow and records calls."""
    device_type = 'gpu'

    def __init__(self):
        self.calls = []

    def predict(self, img1s, img2s, batch_size=1, resize=None):
        self.calls.append((len(img1s), img1s[0].shape[:2], batch_size, resize))
        for img1 in img1s:
            flow = np.full(img1.shape[:2] + (2,), float(img1[0, 0, 0]), np.float32)
            yield flow, np.full(img1.shape[:2] + (1,), 1.5, np.float32), None


def test_any_backend_of_the_interface_slots_in():
    backend = RecordingBackend()
    model = api.Model(backend)
    images = [np.full(shape + (3,), k, np.uint8)
              for k, shape in enumerate([(4, 6)] * 3 + [(8, 6)] * 2 + [(4, 6)])]
    flows, occs = model.predict_batch(images, images, batch_size=2, resize=(64, 64))
    assert [f[0, 0, 0] for f in flows] == [0, 1, 2, 3, 4, 5]
    assert all((occ == 1).all() and occ.shape == f.shape[:2] for occ, f in zip(occs, flows))
    # runs of one size, at most batch_size at a time, in order
    assert backend.calls == [(2, (4, 6), 2, (64, 64)), (1, (4, 6), 2, (64, 64)),
                             (2, (8, 6), 2, (64, 64)), (1, (4, 6), 2, (64, 64))]
    assert model.default_batch == 8   # a GPU backend's
    model.predict_batch(images[:3], images[:3])
    assert backend.calls[-1][0] == 3 and backend.calls[-1][2] == 8


@pytest.mark.parametrize('call, fragment', [
    (lambda m, a: m.predict(a.astype(np.float32), a), 'uint8'),
    (lambda m, a: m.predict(a, a[:-1]), 'pair 0: the images differ in size (96x64 and 96x63)'),
    (lambda m, a: m.predict(a[..., :2], a[..., :2]), 'H x W x 3'),
    (lambda m, a: m.predict(a, a, channel_order='yuv'), "channel_order 'yuv'"),
    (lambda m, a: m.predict(a, a, resize=(100, 64)), '--resize 100,64: expected H,W'),
    (lambda m, a: m.predict_batch([a], [a, a]), 'got 1 first images but 2 second images'),
    (lambda m, a: m.predict_batch([a], [a], batch_size=0), 'batch_size 0'),
    # a bare TypeError deep in the pipeline before
    (lambda m, a: m.predict_batch([a], [a], batch_size=1.5), 'batch_size 1.5: must be a whole'),
])
def test_bad_inputs_are_one_line_user_errors(call, fragment):
    model = api.Model(RecordingBackend())
    with pytest.raises(UserError) as error:
        call(model, np.zeros((64, 96, 3), np.uint8))
    assert fragment in str(error.value) and '\n' not in str(error.value)


def test_checkpoints_by_run_id_and_published_names(tmp_path, golden_checkpoint, monkeypatch):
    shutil.copy(golden_checkpoint('MaskFlownet_S'), tmp_path / 'abcDec01-1200_5000.params')
    model = api.load_model('MaskFlownet_S', 'abc', weights_dir=str(tmp_path))
    assert model.loaded.steps == 5000 and model.loaded.run_id == 'abcDec01-1200'
    with pytest.raises(UserError, match='add --download to fetch 5adNov03-0005_1000000.params'):
        api.load_model('MaskFlownet.yaml', '5adNov03', weights_dir=str(tmp_path))
    fetched = []

    def fake_download(spec, network_class, weights_dir, config_source=None):
        fetched.append((spec, network_class, weights_dir))
        return str(tmp_path / 'abcDec01-1200_5000.params'), 'abcDec01-1200', 5000
    monkeypatch.setattr(api, 'find_or_download', fake_download)
    api.load_model('MaskFlownet_S.yaml', 'dbbSep30', download=True, weights_dir=str(tmp_path))
    assert fetched == [('dbbSep30', 'MaskFlownet_S', str(tmp_path))]
    with pytest.raises(UserError, match='looks like a MaskFlownet_S checkpoint'):
        api.load_model('MaskFlownet', str(tmp_path / 'abcDec01-1200_5000.params'))
    with pytest.raises(UserError, match="device 3.5"):
        api.load_model('MaskFlownet_S', 'abc', device=3.5, weights_dir=str(tmp_path))


@pytest.mark.slow
def test_the_onnxruntime_backend_through_the_api_and_the_folder_mode(tmp_path, monkeypatch,
                                                                      golden_checkpoint, model,
                                                                      pair):
    """load_model(backend='onnxruntime') and predict_new_data.py --frames --backend onnxruntime:
    the same flow as the MXNet backend within the parity tolerance."""
    monkeypatch.setenv('MASKFLOWNET_ONNX_CACHE', str(tmp_path / 'cache'))
    onnx_model = api.load_model('MaskFlownet_S.yaml', str(golden_checkpoint('MaskFlownet_S')),
                                backend='onnxruntime')
    assert onnx_model.backend.device_type == 'cpu' and onnx_model.default_batch == 2
    flow, occ = onnx_model.predict(*pair)
    expected_flow, expected_occ = model.predict(*pair)
    np.testing.assert_allclose(flow, expected_flow, atol=1e-3)
    np.testing.assert_allclose(occ, expected_occ, atol=1e-5)
    frames = tmp_path / 'frames'
    frames.mkdir()
    for k, image in enumerate(pair):
        cv2.imwrite(str(frames / ('frame_%04d.png' % k)), image)
    out = tmp_path / 'flows'
    assert predict_new_data.main([str(out), 'MaskFlownet_S.yaml', '--frames', str(frames), '-c',
                                  str(golden_checkpoint('MaskFlownet_S')), '--backend',
                                  'onnxruntime']) == 0
    np.testing.assert_allclose(flowio.read_flo(out / 'frame_0000.flo'), expected_flow, atol=1e-3)
