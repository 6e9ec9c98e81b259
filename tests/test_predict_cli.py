"""predict_new_data.py end to end on the golden fixture images."""
import os
import subprocess
import sys
from pathlib import Path

import cv2
import flow_vis
import numpy as np
import mxnet as mx
import pytest

from conftest import expect_cli_error as expect_error, run_predict_cli as run_cli
from conftest import assert_close
from engine.runs import find_checkpoint
from common.errors import UserError
from common.options import parse_resize
from reader.flowio import read_flo

REPO = Path(__file__).resolve().parent.parent
FLOW_TOL = dict(atol=1e-3, rtol=1e-5)


@pytest.fixture(scope='module')
def images(tmp_path_factory, golden):
    """PNG files that cv2.imread decodes to the golden RGB arrays.

    The CLI feeds OpenCV's BGR order, as the original's predict_new_data.py did, so writing the
    RGB arrays as if they were BGR makes it feed exactly the golden inputs."""
    folder = tmp_path_factory.mktemp('images')
    inputs = golden(None, 'inputs')
    paths = []
    for k, key in enumerate(['img1_rgb_uint8', 'img2_rgb_uint8'], start=1):
        path = folder / ('frame%d.png' % k)
        cv2.imwrite(str(path), inputs[key])
        paths.append(str(path))
    return paths


def test_npy_output_matches_the_original_in_a_separate_process(images, golden_checkpoint, golden, tmp_path):
    out = tmp_path / 'flow.npy'
    done = subprocess.run(
        [sys.executable, str(REPO / 'predict_new_data.py'), str(out), 'MaskFlownet_S.yaml',
         '--image_1', images[0], '--image_2', images[1], '-c', str(golden_checkpoint('MaskFlownet_S'))],
        cwd=tmp_path, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert done.returncode == 0, done.stderr
    flow = np.load(out)
    assert flow.dtype == np.float32
    assert_close(flow, golden('MaskFlownet_S', 'predict')['flow'], what='CLI flow', **FLOW_TOL)


def test_flo_png_and_occlusion_mask_outputs(images, golden_checkpoint, golden, tmp_path):
    gold = golden('MaskFlownet_S', 'predict')
    ckpt = golden_checkpoint('MaskFlownet_S')
    flo, png, occ = tmp_path / 'f.flo', tmp_path / 'f.png', tmp_path / 'occ.png'
    assert run_cli([flo, 'MaskFlownet_S', '--image_1', images[0], '--image_2', images[1],
                    '-c', ckpt, '--occ_mask', occ]) == 0
    assert_close(read_flo(flo), gold['flow'], what='.flo flow', **FLOW_TOL)
    mask = cv2.imread(str(occ), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (218, 512) and mask.dtype == np.uint8
    assert np.abs(mask.astype(float) - gold['occ_mask'][..., 0] * 255).max() <= 0.51

    assert run_cli([png, 'MaskFlownet_S', '--image_1', images[0], '--image_2', images[1], '-c', ckpt]) == 0
    colours_bgr = cv2.imread(str(png))
    # The file holds the flow_vis colours in true RGB (the original swapped them).
    expected_rgb = flow_vis.flow_to_color(read_flo(flo))
    assert np.abs(colours_bgr[..., ::-1].astype(int) - expected_rgb).max() <= 1


def test_grayscale_and_rgba_inputs(images, golden_checkpoint, tmp_path):
    img = cv2.imread(images[0])
    gray, rgba = tmp_path / 'gray.png', tmp_path / 'rgba.png'
    cv2.imwrite(str(gray), cv2.cvtColor(img, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(rgba), cv2.cvtColor(img, cv2.COLOR_BGR2BGRA))
    out = tmp_path / 'flow.npy'
    assert run_cli([out, 'MaskFlownet_S', '--image_1', gray, '--image_2', rgba, '-c',
                    golden_checkpoint('MaskFlownet_S'), '--resize', '192,448']) == 0
    flow = np.load(out)
    assert flow.shape == (218, 512, 2) and np.isfinite(flow).all()


def test_bad_inputs_give_one_line_errors_and_no_output(images, golden_checkpoint, tmp_path, capsys):
    ckpt = golden_checkpoint('MaskFlownet_S')
    out = tmp_path / 'flow.flo'
    missing = tmp_path / 'nope.png'
    expect_error(capsys, [out, 'MaskFlownet_S', '--image_1', missing, '--image_2', images[1], '-c', ckpt],
                 missing)
    broken = tmp_path / 'broken.png'
    broken.write_bytes(b'\x89PNG not really')
    expect_error(capsys, [out, 'MaskFlownet_S', '--image_1', images[0], '--image_2', broken, '-c', ckpt],
                 broken)
    small = tmp_path / 'small.png'
    cv2.imwrite(str(small), np.zeros((100, 200, 3), np.uint8))
    expect_error(capsys, [out, 'MaskFlownet_S', '--image_1', images[0], '--image_2', small, '-c', ckpt],
                 small, 'same size')
    expect_error(capsys, [tmp_path / 'flow.txt', 'MaskFlownet_S', '--image_1', images[0],
                          '--image_2', images[1], '-c', ckpt], 'flow.txt', '.flo')
    expect_error(capsys, [out, 'MaskFlownet_S', '--image_1', images[0], '--image_2', images[1],
                          '-c', ckpt, '--resize', '200,500'], '--resize', 'multiples of 64')
    expect_error(capsys, [out, 'MaskFlownet', '--image_1', images[0], '--image_2', images[1],
                          '-c', ckpt], ckpt, 'looks like a MaskFlownet_S checkpoint')
    if mx.context.num_gpus() == 0:
        expect_error(capsys, [out, 'MaskFlownet_S', '--image_1', images[0], '--image_2', images[1],
                              '-c', ckpt, '-g', '0'], '-g 0', 'mxnet-cu112')
    expect_error(capsys, [out, 'NoSuchNet', '--image_1', images[0], '--image_2', images[1],
                          '-c', ckpt], 'NoSuchNet', 'MaskFlownet_S_sintel')
    expect_error(capsys, [out, 'MaskFlownet_S', '--image_1', images[0], '--image_2', images[1],
                          '-c', 'zzzNov01'], 'zzzNov01')
    blocker = tmp_path / 'blocker'
    blocker.write_text('a file, so no folder can be made here')
    expect_error(capsys, [out, 'MaskFlownet_S', '--image_1', images[0], '--image_2', images[1],
                          '-c', ckpt, '--occ_mask', blocker / 'mask.png'], blocker / 'mask.png')
    expect_error(capsys, [out, 'MaskFlownet_S', '--image_1', images[0], '--image_2', images[1],
                          '-c', tmp_path], 'is a directory')
    # An output that cannot be written is found before any work: no flow was written either.
    assert sorted(p.name for p in tmp_path.iterdir()) == ['blocker', 'broken.png', 'small.png']


def test_checkpoint_lookup_by_run_id(tmp_path):
    for name in ['8caNov12-1532_300000.params', '8caNov12-1532_295000.params',
                 '8cbNov13-0101_5000.params', '771Sep25-0735_500000.params', 'notes.txt']:
        (tmp_path / name).write_bytes(b'')
    newest = find_checkpoint('8caNov', tmp_path)
    assert newest == (str(tmp_path / '8caNov12-1532_300000.params'), '8caNov12-1532', 300000)
    assert find_checkpoint('771:500000', tmp_path)[2] == 500000
    assert find_checkpoint('8caNov12-1532:295000', tmp_path)[2] == 295000
    with pytest.raises(UserError, match='ambiguous.*8caNov12-1532, 8cbNov13-0101'):
        find_checkpoint('8c', tmp_path)
    with pytest.raises(UserError, match='has no checkpoint at 1000 steps'):
        find_checkpoint('771:1000', tmp_path)
    with pytest.raises(UserError, match='no checkpoint abc'):
        find_checkpoint('abc', tmp_path)
    path = str(tmp_path / '771Sep25-0735_500000.params')
    assert find_checkpoint(path, tmp_path) == (path, '771Sep25-0735', 500000)


# --- outputs are safe: checked first, all or none, never clobbering earlier files ----------

@pytest.fixture
def no_network(monkeypatch):
    """Fail the test if the network is loaded: the checks must come before it."""
    from engine import predict

    def load_pipeline(*args, **kwargs):
        pytest.fail('the network was loaded before the inputs and outputs were checked')
    monkeypatch.setattr(predict, 'load_pipeline', load_pipeline)


def snapshot(folder):
    """{name: bytes} of the files in ``folder``, to compare before and after a run."""
    return {path.name: path.read_bytes() for path in Path(folder).iterdir() if path.is_file()}


def run_without_interrupt(args):
    """run_cli, failing the test (not the whole session) if KeyboardInterrupt escapes."""
    try:
        return run_cli(args)
    except KeyboardInterrupt:
        pytest.fail('KeyboardInterrupt escaped predict_new_data.main')


def test_output_paths_are_checked_before_the_network_loads(images, golden_checkpoint, tmp_path,
                                                           capsys, no_network):
    ckpt = golden_checkpoint('MaskFlownet_S')
    pair = ['--image_1', images[0], '--image_2', images[1], '-c', ckpt]
    inputs_before = snapshot(Path(images[0]).parent)
    flow = tmp_path / 'flow.flo'
    flow.write_bytes(b'previous flow')
    link = tmp_path / 'link.png'
    link.symlink_to(images[1])
    respelled = Path(images[0]).parent / '.' / '..' / Path(images[0]).parent.name / 'frame1.png'
    for out in [images[0], respelled, link]:
        expect_error(capsys, [out, 'MaskFlownet_S'] + pair, out, 'is the input')
    expect_error(capsys, [flow, 'MaskFlownet_S', '--occ_mask', images[1]] + pair,
                 images[1], 'is the input')
    same = tmp_path / 'same.png'
    expect_error(capsys, [same, 'MaskFlownet_S', '--occ_mask', str(tmp_path) + '/./same.png'] + pair,
                 'is also the output', same)
    folder = tmp_path / 'folder.flo'
    folder.mkdir()
    expect_error(capsys, [folder, 'MaskFlownet_S'] + pair, folder, 'is a directory')
    blocker = tmp_path / 'blocker'
    blocker.write_text('a file, so no folder can be made here')
    expect_error(capsys, [flow, 'MaskFlownet_S', '--occ_mask', blocker / 'mask.png'] + pair,
                 blocker / 'mask.png', 'not a folder')
    expect_error(capsys, [blocker / 'sub' / 'flow.flo', 'MaskFlownet_S'] + pair, 'not a folder')
    assert snapshot(Path(images[0]).parent) == inputs_before
    assert snapshot(tmp_path) == {'flow.flo': b'previous flow', 'blocker': blocker.read_bytes(),
                                  'link.png': Path(images[1]).read_bytes()}


@pytest.mark.skipif(os.geteuid() == 0, reason='root may write into any folder')
def test_read_only_folder_is_reported_before_the_network_loads(images, golden_checkpoint, tmp_path,
                                                               capsys, no_network):
    locked = tmp_path / 'locked'
    locked.mkdir()
    locked.chmod(0o555)
    try:
        expect_error(capsys, [locked / 'flow.flo', 'MaskFlownet_S', '--image_1', images[0],
                              '--image_2', images[1], '-c', golden_checkpoint('MaskFlownet_S')],
                     locked / 'flow.flo', 'not writable')
    finally:
        locked.chmod(0o755)


@pytest.mark.parametrize('failure', ['mask not encoded', 'mask not moved', 'interrupted'])
def test_a_failed_mask_write_leaves_earlier_files_as_they_were(images, golden_checkpoint, tmp_path,
                                                               capsys, monkeypatch, failure):
    out, mask = tmp_path / 'flow.flo', tmp_path / 'mask.png'
    out.write_bytes(b'previous flow')
    mask.write_bytes(b'previous mask')
    if failure == 'mask not encoded':
        monkeypatch.setattr(cv2, 'imwrite', lambda path, image: False)
    else:
        replace = os.replace

        def replace_fails_for_the_mask(src, dst):
            if os.fspath(dst) == str(mask):
                if failure == 'interrupted':
                    raise KeyboardInterrupt
                raise OSError(28, 'No space left on device', src, None, dst)
            replace(src, dst)
        monkeypatch.setattr(os, 'replace', replace_fails_for_the_mask)
    args = [out, 'MaskFlownet_S', '--image_1', images[0], '--image_2', images[1],
            '-c', golden_checkpoint('MaskFlownet_S'), '--occ_mask', mask]
    if failure == 'interrupted':
        assert run_without_interrupt(args) == 130
        assert capsys.readouterr().err == 'interrupted\n'
    else:
        expect_error(capsys, args, mask, 'OpenCV could not write' if failure == 'mask not encoded'
                     else 'No space left')
    assert snapshot(tmp_path) == {'flow.flo': b'previous flow', 'mask.png': b'previous mask'}


def test_ctrl_c_prints_one_line_exits_130_and_leaves_no_output(images, golden_checkpoint, tmp_path,
                                                               capsys, monkeypatch):
    from network.pipeline import Pipeline

    def predict_then_ctrl_c(self, *args, **kwargs):
        raise KeyboardInterrupt   # what Python's SIGINT handler raises on Ctrl-C
        yield from ()
    monkeypatch.setattr(Pipeline, 'predict', predict_then_ctrl_c)
    out = tmp_path / 'flow.npy'
    assert run_without_interrupt([out, 'MaskFlownet_S', '--image_1', images[0], '--image_2', images[1],
                                  '-c', golden_checkpoint('MaskFlownet_S'),
                                  '--occ_mask', tmp_path / 'mask.png']) == 130
    assert capsys.readouterr().err == 'interrupted\n'
    assert list(tmp_path.iterdir()) == []


def test_temporaries_of_killed_runs_are_removed_at_the_next_start(images, golden_checkpoint, tmp_path):
    dead = subprocess.Popen([sys.executable, '-c', 'pass'])
    dead.wait()
    stale = ['flow.flo.tmp-%d' % dead.pid, 'flow.flo.tmp-%d.old' % dead.pid]
    for name in stale + ['notes.txt']:
        (tmp_path / name).write_bytes(b'left over')
    out = tmp_path / 'flow.flo'
    assert run_cli([out, 'MaskFlownet_S', '--image_1', images[0], '--image_2', images[1],
                    '-c', golden_checkpoint('MaskFlownet_S')]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ['flow.flo', 'notes.txt']
    assert read_flo(out).shape == (218, 512, 2)


# --- inputs the network cannot take are refused before it runs ------------------------------

def test_images_and_resize_beyond_mxnets_size_limit_are_refused(images, golden_checkpoint, tmp_path,
                                                                capsys, no_network):
    ckpt = golden_checkpoint('MaskFlownet_S')
    out = tmp_path / 'out' / 'flow.flo'
    # MXNet's resize wraps 32768 to -32768 (a traceback) and 70000 to 4464 (a wrong flow).
    for width in [32768, 32705]:   # 32705 would be rounded up to 32768
        wide = tmp_path / ('wide%d.png' % width)
        cv2.imwrite(str(wide), np.zeros((1, width, 3), np.uint8))
        expect_error(capsys, [out, 'MaskFlownet_S', '--image_1', wide, '--image_2', wide, '-c', ckpt],
                     wide, '%dx1' % width, '32704')
    for size in ['64,32768', '32768,64', '64,70016']:
        expect_error(capsys, [out, 'MaskFlownet_S', '--image_1', images[0], '--image_2', images[1],
                              '-c', ckpt, '--resize', size], '--resize %s' % size, '32704')
    assert parse_resize('64,32704') == (64, 32704)
    assert not out.parent.exists()


def test_truncated_jpeg_input_is_refused_before_the_network(images, golden_checkpoint, tmp_path,
                                                            capsys, no_network):
    data = cv2.imencode('.jpg', cv2.imread(images[1]))[1].tobytes()
    cut = tmp_path / 'cut.jpg'
    cut.write_bytes(data[:len(data) // 2])   # libjpeg decodes it with a grey lower half
    out = tmp_path / 'flow.flo'
    expect_error(capsys, [out, 'MaskFlownet_S', '--image_1', images[0], '--image_2', cut,
                          '-c', golden_checkpoint('MaskFlownet_S')], cut, 'truncated JPEG')
    assert not out.exists()
