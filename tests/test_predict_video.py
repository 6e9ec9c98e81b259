"""predict_new_data.py --video_filepath and network.predict.predict_video on a generated clip."""
import contextlib

import cv2
import flow_vis
import imageio.v2 as imageio
import imageio_ffmpeg
import numpy as np
import pytest
from moviepy.video.io.ffmpeg_writer import FFMPEG_VideoWriter
from moviepy.video.io.VideoFileClip import VideoFileClip

from conftest import expect_cli_error as expect_error, run_predict_cli as run_cli
from engine import predict
from common.errors import UserError
from network.pipeline import Pipeline

HEIGHT, WIDTH, FRAMES, FPS = 64, 96, 6, 12   # an fps no default would produce
CODEC_TOL = 12   # mean |diff| on uint8 after an H.264 round trip


def moving_pattern(count, height=HEIGHT, width=WIDTH):
    """Frames of a smooth random texture that speeds up, so each pair has its own flow."""
    rng = np.random.default_rng(0)
    texture = cv2.resize(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8), (4 * width, 4 * height))
    frames = []
    for k in range(count):
        dx, dy = 3 * k + k * k, 2 * k
        frames.append(np.ascontiguousarray(texture[20 + dy:20 + dy + height, 20 + dx:20 + dx + width]))
    return frames


def write_clip(path, frames, fps=FPS):
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'mp4v'), fps, (width, height))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def read_video(path):
    """All frames of a video as OpenCV decodes them (BGR)."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


@pytest.fixture(scope='module')
def clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp('clip') / 'moving.mp4', moving_pattern(FRAMES))


@pytest.fixture(scope='module')
def pipe(golden_checkpoint):
    return predict.load_pipeline('MaskFlownet_S', golden_checkpoint('MaskFlownet_S'))[0]


def flow_colours(pipe, img1, img2):
    return flow_vis.flow_to_color(pipe.predict_pair(img1, img2)[0]).astype(float)


def mean_diff(a, b):
    return np.abs(np.asarray(a, float) - np.asarray(b, float)).mean()


def test_cli_writes_the_flow_of_each_consecutive_pair(clip, pipe, golden_checkpoint, tmp_path, capsys):
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
    expected = mean_diff(shown, flow_colours(pipe, frames[3], frames[4]))
    assert expected < CODEC_TOL
    others = [flow_colours(pipe, frames[2], frames[3]), flow_colours(pipe, frames[4], frames[5]),
              flow_colours(pipe, frames[3][..., ::-1], frames[4][..., ::-1]),
              flow_colours(pipe, frames[4], frames[3])]
    assert all(mean_diff(shown, other) > expected + 5 for other in others)


@pytest.fixture
def predict_calls(monkeypatch):
    """(pairs, batch_size) of every Pipeline.predict call the test makes."""
    calls = []
    original = Pipeline.predict

    def spy(self, img1s, img2s, batch_size=1, resize=None, warped=False):
        calls.append((len(img1s), batch_size))
        return original(self, img1s, img2s, batch_size=batch_size, resize=resize, warped=warped)
    monkeypatch.setattr(Pipeline, 'predict', spy)
    return calls


def test_side_by_side_streams_batches_of_pairs(clip, pipe, tmp_path, predict_calls):

    out = tmp_path / 'side.mkv'
    assert predict.predict_video(pipe, clip, out, batch=4, side_by_side=True) == FRAMES - 1
    assert predict_calls == [(4, 4), (1, 4)]
    written = read_video(out)
    assert len(written) == FRAMES - 1 and written[0].shape == (HEIGHT, 3 * WIDTH, 3)
    frames = read_video(clip)
    k = 1
    image, colours, mask = np.split(written[k][..., ::-1].astype(float), 3, axis=1)
    assert mean_diff(image, frames[k][..., ::-1]) < CODEC_TOL
    assert mean_diff(colours, flow_colours(pipe, frames[k], frames[k + 1])) < CODEC_TOL
    _, occ_mask, _ = pipe.predict_pair(frames[k], frames[k + 1])
    assert mean_diff(mask, np.repeat(occ_mask, 3, axis=2) * 255) < CODEC_TOL
    assert (mask.max(axis=2) - mask.min(axis=2)).mean() < 3   # gray


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
        assert message in capsys.readouterr().err


def test_video_batch_defaults_to_2_pairs_a_call_on_the_cpu(clip, pipe, tmp_path, predict_calls):
    # On the CPU a batch of 2 is as fast per pair as the original's 8 (kept for GPUs), with 1.1
    # instead of 2.8 GB at 436 x 1024.
    from common.options import DEFAULT_VIDEO_BATCH
    assert DEFAULT_VIDEO_BATCH == {'cpu': 2, 'gpu': 8}
    assert predict.predict_video(pipe, clip, tmp_path / 'flow.mp4') == FRAMES - 1
    assert predict_calls == [(2, 2), (2, 2), (1, 2)]


def test_interrupted_run_leaves_no_output(clip, pipe, tmp_path, monkeypatch):
    written = []
    original = FFMPEG_VideoWriter.write_frame

    def write_then_interrupt(self, frame):
        if len(written) == 2:
            raise KeyboardInterrupt
        written.append(frame.shape)
        original(self, frame)
    monkeypatch.setattr(FFMPEG_VideoWriter, 'write_frame', write_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        predict.predict_video(pipe, clip, tmp_path / 'flow.mp4', batch=2)
    assert len(written) == 2
    assert list(tmp_path.iterdir()) == []


def test_failure_while_writing_ends_the_run_with_its_error_and_no_output(clip, pipe, tmp_path,
                                                                         monkeypatch):
    """Frames are coloured and written in a thread beside the network: its error must reach
    the caller, and the output must not appear."""
    rendered = []
    render = predict.render_video_frame

    def render_then_fail(*args, **kwargs):
        if len(rendered) == 3:   # in the second batch of two
            raise UserError('encoder on fire')
        rendered.append(1)
        return render(*args, **kwargs)
    monkeypatch.setattr(predict, 'render_video_frame', render_then_fail)
    with pytest.raises(UserError, match='encoder on fire'):
        predict.predict_video(pipe, clip, tmp_path / 'flow.mp4', batch=2)
    assert len(rendered) == 3
    assert list(tmp_path.iterdir()) == []


class FakeCapture:
    """A cv2.VideoCapture stand-in that reports no frame rate or count and yields given frames."""

    def __init__(self, frames):
        self.frames = list(frames)

    def isOpened(self):
        return True

    def read(self):
        return (True, self.frames.pop(0)) if self.frames else (False, None)

    def get(self, prop):
        return float('nan') if prop == cv2.CAP_PROP_FPS else 0.0

    def release(self):
        pass


def test_unknown_fps_falls_back_and_size_changes_are_refused(clip, pipe, tmp_path, monkeypatch, capsys):
    frames = moving_pattern(3, 64, 64)
    out = tmp_path / 'flow.mov'
    with monkeypatch.context() as patch:
        patch.setattr(cv2, 'VideoCapture', lambda path, *options: FakeCapture(frames))
        assert predict.predict_video(pipe, clip, out) == 2
    assert 'warning: %s: the video reports no frame rate; writing at 25 fps' % clip in capsys.readouterr().err
    assert cv2.VideoCapture(str(out)).get(cv2.CAP_PROP_FPS) == 25
    out.unlink()

    grown = frames[:2] + [np.zeros((64, 128, 3), np.uint8)]
    with monkeypatch.context() as patch:
        patch.setattr(cv2, 'VideoCapture', lambda path, *options: FakeCapture(grown))
        with pytest.raises(UserError, match='frame 2 is 128x64 but frame 0 is 64x64'):
            predict.predict_video(pipe, clip, out, batch=1)
    assert list(tmp_path.iterdir()) == []


def pixel_format(path):
    """The pixel format ffmpeg reports for the video stream of ``path`` (e.g. 'yuv420p')."""
    frames = imageio_ffmpeg.read_frames(str(path))
    try:
        return next(frames)['pix_fmt'].split('(')[0]
    finally:
        frames.close()


def test_odd_sized_video_is_padded_to_yuv420p_that_every_player_takes(clip, pipe, tmp_path, monkeypatch):
    frames = [frame[:63, :95] for frame in moving_pattern(3)]
    out = tmp_path / 'odd.mp4'
    with monkeypatch.context() as patch:
        patch.setattr(cv2, 'VideoCapture', lambda path, *options: FakeCapture(frames))
        assert predict.predict_video(pipe, clip, out) == 2
    assert pixel_format(out) == 'yuv420p'
    written = read_video(out)
    assert len(written) == 2 and written[0].shape == (64, 96, 3)
    shown = written[1][..., ::-1].astype(float)
    expected = flow_colours(pipe, frames[1], frames[2])
    assert mean_diff(shown[:63, :95], expected) < CODEC_TOL
    # The padding repeats the last row and column.
    assert mean_diff(shown[63, :95], expected[62]) < CODEC_TOL
    assert mean_diff(shown[:63, 95], expected[:, 94]) < CODEC_TOL


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
