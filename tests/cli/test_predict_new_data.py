"""predict_new_data.py end to end: image pairs (the golden fixture images), videos (a generated
clip), --download from a loopback HTTP server (never the internet), and its one-line errors."""
import contextlib
import http.server
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import flow_vis
import imageio.v2 as imageio
import mxnet as mx
import numpy as np
import pytest
from moviepy.video.io.VideoFileClip import VideoFileClip

from common.errors import UserError
from common.options import parse_resize
from engine import predict, published
from network.pipeline import Pipeline
from reader import video
from reader.flowio import read_flo
from tests.helpers import (VIDEO_FRAMES, damaged_jpeg, encoded_picture,
                           CODEC_TOL, FPS, FRAMES, HEIGHT, REPO, WIDTH, FakeCapture, assert_close,
                           flow_colours, mean_diff, moving_pattern, read_video,
                           set_up_calls_and_status, small_pair, write_clip, write_modified)
from tests.helpers import expect_cli_error as expect_error, run_predict_cli as run_cli

FLOW_TOL = dict(atol=1e-3, rtol=1e-5)


@pytest.mark.slow
def test_the_process_is_set_up_before_mxnet_loads(tmp_path):
    words, output = set_up_calls_and_status(
        'predict_new_data', ['out.flo', 'MaskFlownet_S', '--image_1', 'missing_1.png',
                             '--image_2', 'missing_2.png', '-c', 'missing.params'], tmp_path)
    assert words == ['[False]', '2'], output


# --------------------------------------------------------------- image pairs

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


@pytest.mark.slow
@pytest.mark.parity
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


@pytest.mark.slow
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


@pytest.mark.slow
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


def test_a_checkpoint_with_non_finite_values_is_refused_on_load(tmp_path, capsys):
    """One line and exit 2, no all-NaN output (the load itself: network/test_checkpoint.py)."""
    def poison(arrays):
        arrays['pred_flow2.weight'][0] = np.nan
    bad = write_modified(tmp_path / 'nan_0.params', 'MaskFlownet_S', poison)
    a, b = tmp_path / 'a.png', tmp_path / 'b.png'
    for path, image in zip((a, b), small_pair()):
        cv2.imwrite(str(path), image)
    out = tmp_path / 'flow.npy'
    assert run_cli([out, 'MaskFlownet_S', '--image_1', a, '--image_2', b, '-c', bad]) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: checkpoint ') and 'NaN' in err and err.count('\n') == 1
    assert not out.exists()


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


@pytest.mark.slow
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


@pytest.mark.slow
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


# --------------------------------------------------------------- videos (--video_filepath)

@pytest.mark.slow
def test_cli_writes_the_flow_of_each_consecutive_pair(clip, predict_pipe, golden_checkpoint, tmp_path,
                                                      capsys):
    out = tmp_path / 'flow.mp4'
    assert run_cli([out, 'MaskFlownet_S', '--video_filepath', clip, '-c',
                    golden_checkpoint('MaskFlownet_S'), '--batch', '2']) == 0
    summary = capsys.readouterr().out
    assert summary.startswith('%s: 5 flow frames, 12.00 fps, 96x64' % out), summary
    assert sorted(p.name for p in tmp_path.iterdir()) == ['flow.mp4']

    capture = cv2.VideoCapture(str(out))
    assert capture.get(cv2.CAP_PROP_FPS) == cv2.VideoCapture(str(clip)).get(cv2.CAP_PROP_FPS) == FPS
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == FRAMES - 1
    capture.release()
    written = read_video(out)
    assert len(written) == FRAMES - 1 and written[0].shape == (HEIGHT, WIDTH, 3)

    with contextlib.closing(imageio.get_reader(out, 'ffmpeg')) as reader:
        assert reader.get_meta_data()['fps'] == FPS
        assert reader.get_meta_data()['size'] == (WIDTH, HEIGHT)
        assert sum(1 for _ in reader) == FRAMES - 1
    with contextlib.closing(VideoFileClip(str(out))) as movie:
        assert movie.fps == FPS and list(movie.size) == [WIDTH, HEIGHT]

    # Frame 3 is the second pair of the second batch: it must show the flow of input frames
    # 3 -> 4 as decoded by OpenCV, fed in BGR order as the original's predict_new_data.py did.
    frames = read_video(clip)
    shown = written[3][..., ::-1]
    expected = mean_diff(shown, flow_colours(predict_pipe, frames[3], frames[4]))
    assert expected < CODEC_TOL
    others = [flow_colours(predict_pipe, frames[2], frames[3]),
              flow_colours(predict_pipe, frames[4], frames[5]),
              flow_colours(predict_pipe, frames[3][..., ::-1], frames[4][..., ::-1]),
              flow_colours(predict_pipe, frames[4], frames[3])]
    assert all(mean_diff(shown, other) > expected + 5 for other in others)


def test_bad_videos_fail_before_the_network_loads(clip, golden_checkpoint, tmp_path, monkeypatch, capsys):
    def no_network(*args, **kwargs):
        pytest.fail('the network was loaded before the inputs were checked')
    monkeypatch.setattr(predict, 'load_pipeline', no_network)
    ckpt = golden_checkpoint('MaskFlownet_S')
    out = tmp_path / 'out' / 'flow.mp4'

    def video_error(video, *fragments, out=out):
        expect_error(capsys, [out, 'MaskFlownet_S', '--video_filepath', video, '-c', ckpt],
                     *fragments)

    video_error(tmp_path / 'missing.mp4', 'missing.mp4', 'file not found')
    single = write_clip(tmp_path / 'single.mp4', moving_pattern(1))
    video_error(single, single, 'at least two frames')
    garbage = tmp_path / 'garbage.mp4'
    garbage.write_bytes(b'\x00\x00\x00\x18ftypmp42 not really a video' * 10)
    video_error(garbage, garbage)
    for bad in ['flow.gif', 'flow.webm', 'flow.png']:
        video_error(clip, bad, "unsupported video output extension", '.mp4, .mkv, .mov, .avi',
                    out=tmp_path / 'out' / bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['garbage.mp4', 'single.mp4']


def test_image_pair_and_video_options_exclude_each_other(clip, capsys):
    for args, message in [([], 'an image pair'),
                          (['--image_1', 'a.png', '--video_filepath', clip], 'not both'),
                          (['--image_1', 'a.png'], 'go together'),
                          (['--image_1', 'a.png', '--image_2', 'b.png', '--side_by_side'],
                           'for --video_filepath'),
                          (['--video_filepath', clip, '--occ_mask', 'm.png'], '--side_by_side')]:
        with pytest.raises(SystemExit) as exit_info:
            run_cli(['out.mp4', 'MaskFlownet_S', '-c', 'x.params'] + args)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert message in err and err.startswith('error: ') and err.count('\n') == 1, err


def test_video_output_must_not_be_the_input_and_is_checked_first(clip, golden_checkpoint, tmp_path,
                                                                 capsys, monkeypatch):
    def no_network(*args, **kwargs):
        pytest.fail('the network was loaded before the output was checked')
    monkeypatch.setattr(predict, 'load_pipeline', no_network)
    before = clip.read_bytes()
    link = tmp_path / 'link.mp4'
    link.symlink_to(clip)
    folder = tmp_path / 'folder.mp4'
    folder.mkdir()
    blocker = tmp_path / 'blocker'
    blocker.write_bytes(b'a file, not a folder')
    for out, problem in [(clip, 'is the input'), (clip.parent / '.' / clip.name, 'is the input'),
                         (link, 'is the input'), (folder, 'is a directory'),
                         (blocker / 'flow.mp4', 'not a folder')]:
        expect_error(capsys, [out, 'MaskFlownet_S', '--video_filepath', clip,
                              '-c', golden_checkpoint('MaskFlownet_S')], out, problem)
    assert clip.read_bytes() == before
    with pytest.raises(UserError, match='is the input'):
        predict.predict_video(None, clip, link)


def test_frames_beyond_mxnets_size_limit_are_refused_before_the_network(clip, golden_checkpoint,
                                                                        tmp_path, capsys, monkeypatch):
    def no_network(*args, **kwargs):
        pytest.fail('the network was loaded before the frames were checked')
    monkeypatch.setattr(predict, 'load_pipeline', no_network)
    wide = [np.zeros((2, 32768, 3), np.uint8)] * 2
    monkeypatch.setattr(cv2, 'VideoCapture', lambda path, *options: FakeCapture(wide))
    expect_error(capsys, [tmp_path / 'flow.mp4', 'MaskFlownet_S', '--video_filepath', clip,
                          '-c', golden_checkpoint('MaskFlownet_S')], clip, '32768x2', '32704')
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize('failure', ['error', 'ctrl-c'])
def test_failure_mid_video_is_one_line_of_its_own_and_leaves_no_file(clip, golden_checkpoint, tmp_path,
                                                                     capsys, monkeypatch, failure):
    calls = []
    original = Pipeline.predict

    def predict_then_fail(self, *args, **kwargs):
        calls.append(len(args[0]))
        if len(calls) == 2:   # after the first batch was written
            if failure == 'error':
                raise UserError('disk on fire')
            raise KeyboardInterrupt   # what Python's SIGINT handler raises on Ctrl-C
        return original(self, *args, **kwargs)
    monkeypatch.setattr(Pipeline, 'predict', predict_then_fail)
    out = tmp_path / 'flow.mp4'
    args = [out, 'MaskFlownet_S', '--video_filepath', clip, '-c', golden_checkpoint('MaskFlownet_S'),
            '--batch', '2']
    if failure == 'error':
        expect_error(capsys, args, 'disk on fire')   # not glued to a progress-bar line
    else:
        try:
            assert run_cli(args) == 130
        except KeyboardInterrupt:
            pytest.fail('KeyboardInterrupt escaped predict_new_data.main')
        assert capsys.readouterr().err == 'interrupted\n'
    assert len(calls) == 2 and list(tmp_path.iterdir()) == []


# --------------------------------------------------------------- --download

COMMIT = 'c0ffee' * 6 + 'c0ff'


class Server:
    """http.server on 127.0.0.1 (port 0): /raw/<commit>/weights/<file> from ``files``, the
    ``drop`` ones cut off after half of their bytes, with their full Content-Length announced."""

    def __init__(self):
        self.files, self.drop, self.requests = {}, set(), []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                name = self.path.rpartition('/')[2]
                if name not in server.files:
                    self.send_error(404)
                    return
                body = server.files[name]
                self.send_response(200)
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body[:len(body) // 2] if name in server.drop else body)
                self.wfile.flush()
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={'poll_interval': 0.05}, daemon=True)
        self.thread.start()
        self.base = 'http://127.0.0.1:%d/raw' % self.httpd.server_address[1]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def server(good_file, tmp_path, monkeypatch):
    """A loopback server with three published entries (good, corrupted, dropped), run from
    ``tmp_path`` (weights/ is relative to the working directory)."""
    path, blob_id = good_file
    content = path.read_bytes()
    corrupted = bytearray(content)
    corrupted[len(corrupted) // 3] ^= 0xFF
    entries = []
    served = Server()
    for run, body in (('tstGood', content), ('tstBad', bytes(corrupted)), ('tstDrop', content)):
        entry = published.Published(run, '%s-0000_500.params' % run, 'MaskFlownet_S',
                                    'MaskFlownet_S_ft.yaml', 'a test', blob_id, COMMIT)
        entries.append(entry)
        served.files[entry.file] = body
    served.drop.add('tstDrop-0000_500.params')
    monkeypatch.setattr(published, 'PUBLISHED', tuple(entries))
    monkeypatch.setattr(published, 'TIMEOUT_S', 10)
    monkeypatch.setenv(published.URL_VARIABLE, served.base)
    monkeypatch.chdir(tmp_path)
    images = []
    rng = np.random.default_rng(0)
    for name in ('a.png', 'b.png'):
        cv2.imwrite(name, rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
        images.append(name)
    served.images = images
    yield served
    served.close()


def predict_args(server, run, config='MaskFlownet_S.yaml', download=True):
    return (['flow.flo', config, '--image_1', server.images[0], '--image_2', server.images[1],
             '-c', run] + (['--download'] if download else []))


@pytest.mark.slow
def test_a_good_download_lands_verified_and_loads(server, good_file, capsys):
    assert run_cli(predict_args(server, 'tstGood')) == 0
    assert server.requests == ['/raw/%s/weights/tstGood-0000_500.params' % COMMIT]
    target = os.path.join('weights', 'tstGood-0000_500.params')
    assert open(target, 'rb').read() == good_file[0].read_bytes()
    assert os.listdir('weights') == ['tstGood-0000_500.params']
    out = capsys.readouterr().out
    assert 'downloaded, git blob id %s verified' % good_file[1] in out
    assert 'flow.flo: flow 64x64 from weights/tstGood-0000_500.params' in out
    # Present now: found in weights/ without asking the server again.
    assert run_cli(predict_args(server, 'tstGood')) == 0
    assert len(server.requests) == 1
    # Into the wrong network: refused with the config that fits.
    expect_error(capsys, predict_args(server, 'tstGood', 'MaskFlownet.yaml', download=False),
                     'does not fit MaskFlownet', 'use MaskFlownet_S_ft.yaml')


@pytest.mark.parametrize('run, why', [('tstBad', "is not the original's (git blob id"),
                                      ('tstDrop', 'connection closed early')])
def test_a_corrupted_or_cut_download_leaves_nothing(server, capsys, run, why):
    target = os.path.join('weights', '%s-0000_500.params' % run)
    expect_error(capsys, predict_args(server, run), target, why, 'nothing written')
    assert len(server.requests) == 1
    assert os.listdir('weights') == []   # neither the file nor a temporary


def test_no_network_access_without_download_nor_for_a_wrong_config(server, capsys):
    expect_error(capsys, predict_args(server, 'tstGood', download=False),
                     'no checkpoint tstGood', 'add --download to fetch tstGood-0000_500.params')
    expect_error(capsys, predict_args(server, 'tstGood', 'MaskFlownet.yaml'),
                     'builds MaskFlownet', 'use MaskFlownet_S_ft.yaml')
    assert server.requests == []


def test_a_missing_file_on_the_server_is_one_line(server, capsys):
    del server.files['tstGood-0000_500.params']
    expect_error(capsys, predict_args(server, 'tstGood'), 'HTTP 404', 'nothing written')


# --- damaged inputs ----------------------------------------------------------------------

def test_predict_new_data_refuses_a_damaged_jpeg_before_the_network_loads(tmp_path, capsys):
    bad = damaged_jpeg(tmp_path / 'a.jpg')
    (tmp_path / 'b.jpg').write_bytes(bytes(encoded_picture('.jpg')))
    out = tmp_path / 'flow.flo'
    assert run_cli([str(out), 'MaskFlownet_S.yaml', '--image_1', str(bad),
                                  '--image_2', str(tmp_path / 'b.jpg'), '-c', 'none']) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: %s: damaged image' % bad) and err.count('\n') == 1
    assert not out.exists()


def run_damaged_video(tmp_path, golden_checkpoint, source, *extra):
    out = tmp_path / 'flow.mp4'
    status = run_cli([str(out), 'MaskFlownet_S.yaml', '--video_filepath',
                                    str(source), '-c', str(golden_checkpoint('MaskFlownet_S')),
                                    '--batch', '8'] + list(extra))
    return status, out


@pytest.mark.slow
def test_a_video_frame_the_decoder_had_to_conceal_is_an_error_naming_it(
        tmp_path, damaged_videos, golden_checkpoint, capsys):
    status, out = run_damaged_video(tmp_path, golden_checkpoint, damaged_videos['mid'])
    assert status == 2 and not out.exists()
    err = capsys.readouterr().err
    assert err.startswith('error: %s: frame %d is damaged; the decoder says: '
                          % (damaged_videos['mid'], damaged_videos['damaged_frame'])) and err.count('\n') == 1


@pytest.mark.slow
def test_a_video_shorter_than_announced_is_an_error_or_with_the_option_a_warning(
        tmp_path, damaged_videos, golden_checkpoint, capsys):
    status, out = run_damaged_video(tmp_path, golden_checkpoint, damaged_videos['cut'])
    assert status == 2 and not out.exists()
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and '--accept_short_video' in err
    assert re.search(r'announces 30 frames but only \d+ decode|frame \d+ is damaged', err), err
    status, out = run_damaged_video(tmp_path, golden_checkpoint, damaged_videos['cut'], '--accept_short_video')
    assert status == 0 and out.exists()
    err = capsys.readouterr().err
    assert 'warning: ' in err and 'announces 30 frames but only' in err
    with video.open_video(out) as capture:
        written = video.frames_announced(capture)
    assert 1 <= written < VIDEO_FRAMES - 1
