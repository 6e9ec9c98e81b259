"""--backend onnxruntime on the command lines: predict_new_data.py (pair, video), main.py
--valid and --predict give what --backend mxnet gives; its failures are one line and exit 2."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import main as main_cli
from tests.helpers import assert_close, expect_cli_error, run_predict_cli
from reader.flowio import read_flo

pytestmark = pytest.mark.slow   # every test here exports a network or runs a command

pytest.importorskip('onnxruntime')

REPO = Path(__file__).resolve().parent.parent.parent
SAMPLE = REPO / 'sample_data'
FLOW_TOL = dict(atol=1e-3, rtol=1e-5)


@pytest.fixture(scope='module')
def images(tmp_path_factory, golden):
    """A 64 x 128 crop of the golden pair, as PNG files."""
    folder = tmp_path_factory.mktemp('images')
    inputs = golden(None, 'inputs')
    paths = []
    for k, key in enumerate(['img1_rgb_uint8', 'img2_rgb_uint8'], start=1):
        paths.append(str(folder / ('frame%d.png' % k)))
        cv2.imwrite(paths[-1], inputs[key][20:84, 100:228])
    return paths


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / 'onnx-cache'
    monkeypatch.setenv('MASKFLOWNET_ONNX_CACHE', str(folder))
    return folder


def pair_args(images, checkpoint, *extra):
    return ['MaskFlownet_S', '--image_1', images[0], '--image_2', images[1], '-c', checkpoint,
            *extra]


def test_a_pair_and_its_mask_match_the_mxnet_backend(images, golden_checkpoint, tmp_path, cache):
    checkpoint = golden_checkpoint('MaskFlownet_S')
    flows, masks = [], []
    for backend in ('mxnet', 'onnxruntime'):
        flo, occ = tmp_path / (backend + '.flo'), tmp_path / (backend + '_occ.png')
        assert run_predict_cli([flo] + pair_args(images, checkpoint, '--occ_mask', occ,
                                                 '--backend', backend)) == 0
        flows.append(read_flo(flo))
        masks.append(cv2.imread(str(occ), cv2.IMREAD_UNCHANGED).astype(int))
    assert_close(flows[1], flows[0], what='flow', **FLOW_TOL)
    assert np.abs(masks[1] - masks[0]).max() <= 1
    assert len(list(cache.glob('*.onnx'))) == 1


def test_missing_onnxruntime_is_one_line(images, golden_checkpoint, tmp_path, cache, capsys,
                                         monkeypatch):
    monkeypatch.setitem(sys.modules, 'onnxruntime', None)
    out = tmp_path / 'f.flo'
    expect_cli_error(capsys, [out] + pair_args(images, golden_checkpoint('MaskFlownet_S'),
                                               '--backend', 'onnxruntime'),
                     '--backend onnxruntime: the onnxruntime package is not installed')
    assert not out.exists() and not cache.exists()


def test_a_gpu_without_the_cuda_provider_is_one_line(images, golden_checkpoint, tmp_path, cache,
                                                     capsys):
    import onnxruntime
    if 'CUDAExecutionProvider' in onnxruntime.get_available_providers():
        pytest.skip('onnxruntime-gpu is installed here')
    expect_cli_error(capsys, [tmp_path / 'f.flo'] + pair_args(
        images, golden_checkpoint('MaskFlownet_S'), '--backend', 'onnxruntime', '-g', '0'),
        '-g 0: this onnxruntime', 'has no CUDA provider', 'onnxruntime-gpu')


def test_a_failed_export_is_one_line_and_caches_nothing(images, golden_checkpoint, tmp_path,
                                                        cache, capsys, break_export):
    break_export(ValueError('unsupported operator'))
    out = tmp_path / 'f.flo'
    expect_cli_error(capsys, [out] + pair_args(images, golden_checkpoint('MaskFlownet_S'),
                                               '--backend', 'onnxruntime'),
                     'exporting MaskFlownet_S for 128x64 images to ONNX failed '
                     '(ValueError: unsupported operator)')
    assert not out.exists() and list(cache.iterdir()) == []


def test_a_corrupt_cached_model_is_rebuilt(images, golden_checkpoint, tmp_path, cache):
    args = pair_args(images, golden_checkpoint('MaskFlownet_S'), '--backend', 'onnxruntime')
    assert run_predict_cli([tmp_path / 'a.npy'] + args) == 0
    model, = cache.glob('*.onnx')
    model.write_bytes(model.read_bytes()[:-100])
    assert run_predict_cli([tmp_path / 'b.npy'] + args) == 0
    assert (np.load(tmp_path / 'a.npy') == np.load(tmp_path / 'b.npy')).all()
    assert len(list(cache.iterdir())) == 2


def test_training_runs_on_mxnet_only(capsys):
    assert main_cli.main(['MaskFlownet_S.yaml', '--backend', 'onnxruntime', '--debug']) == 2
    assert capsys.readouterr().err == ('error: --backend onnxruntime: only --valid and --predict '
                                       'run on it; training runs on mxnet\n')


@pytest.mark.slow
def test_a_video_matches_the_mxnet_backend(golden_checkpoint, tmp_path, cache):
    from tests.helpers import moving_pattern, read_video, write_clip
    clip = write_clip(tmp_path / 'clip.mp4', moving_pattern(4))
    outputs = []
    for backend in ('mxnet', 'onnxruntime'):
        out = tmp_path / (backend + '.mp4')
        assert run_predict_cli([out, 'MaskFlownet_S', '--video_filepath', clip, '-c',
                                golden_checkpoint('MaskFlownet_S'), '--backend', backend]) == 0
        outputs.append(np.stack(read_video(out)).astype(float))
    assert outputs[0].shape == outputs[1].shape == (3, 64, 96, 3)
    assert np.abs(outputs[0] - outputs[1]).mean() < 1


def _main_py(args, cwd, env):
    """main.py in a process of its own: its memory (MXNet's pool at Sintel and KITTI sizes,
    onnxruntime's) leaves with it instead of staying in the test process."""
    done = subprocess.run([sys.executable, str(REPO / 'main.py')] + [str(a) for a in args],
                          cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def _logged(path):
    lines = [re.sub(r'^\[[^]]*\] ', '', line) for line in path.read_text().splitlines()]
    return dict(line.split(', ', 1)[1].split('=') for line in lines)


@pytest.mark.slow
def test_valid_and_predict_match_the_mxnet_backend(golden_checkpoint, tmp_path, cache):
    sintel_test = tmp_path / 'sintel'
    for pass_name in ('clean', 'final'):
        shutil.copytree(SAMPLE / 'MPI-Sintel-complete' / 'training' / pass_name,
                        sintel_test / 'test' / pass_name)
    roots = tmp_path / 'sintel_only.yaml'   # the samples have no KITTI test split
    roots.write_text('sintel: %s\n' % sintel_test)
    env = dict(os.environ, MASKFLOWNET_DATASETS=str(roots), OMP_NUM_THREADS='1')
    logs, flows = {}, {}
    for backend in ('mxnet', 'onnxruntime'):
        run = tmp_path / backend
        run.mkdir()
        checkpoint = run / 'abcNov20-1200_1000.params'
        shutil.copy(golden_checkpoint('MaskFlownet_S'), checkpoint)
        _main_py(['MaskFlownet_S.yaml', '--predict', '-c', checkpoint, '--backend', backend,
                  '--occ_mask'], run, env)
        folder = run / 'flows' / 'abcNov20-1200_1000_sintel'
        flows[backend] = {p.relative_to(folder): read_flo(p) for p in folder.rglob('*.flo')}
        records = json.loads((folder / 'predict_settings.json').read_text())
        logs.setdefault('records', []).append(records)
    assert logs['records'][0] == logs['records'][1]   # the same weights sha256, size, config
    assert sorted(flows['mxnet']) == sorted(flows['onnxruntime']) and flows['mxnet']
    for name, flow in flows['mxnet'].items():
        assert_close(flows['onnxruntime'][name], flow, what=str(name), **FLOW_TOL)
    # --valid on the bundled Sintel, KITTI and Chairs samples: the same metrics
    env['MASKFLOWNET_DATASETS'] = str(SAMPLE / 'datasets.yaml')
    for backend in ('mxnet', 'onnxruntime'):
        checkpoint = tmp_path / backend / 'abcNov20-1200_1000.params'
        _main_py(['MaskFlownet_S.yaml', '--valid', '-c', checkpoint, '--batch', '1',
                  '--backend', backend], tmp_path / backend, env)
        logs[backend] = _logged(tmp_path / backend / 'logs' / 'val' / 'abcNov20-1200.val.log')
    assert sorted(logs['mxnet']) == sorted(logs['onnxruntime'])
    for key, value in logs['mxnet'].items():
        assert float(logs['onnxruntime'][key]) == pytest.approx(float(value), rel=1e-5, abs=1e-6,
                                                                 nan_ok=True), key
