"""engine/predict.py: predict_video on a generated clip: batches, the side-by-side layout, frame
rates, odd sizes, and failures that leave no output."""
import cv2
import imageio_ffmpeg
import numpy as np
import pytest
from moviepy.video.io.ffmpeg_writer import FFMPEG_VideoWriter

from common.errors import UserError
from engine import predict
from network.pipeline import Pipeline
from tests.helpers import (CODEC_TOL, FRAMES, HEIGHT, WIDTH, FakeCapture, flow_colours, mean_diff,
                           moving_pattern, read_video)

# Each writes a video with ffmpeg (a subprocess).
pytestmark = pytest.mark.slow


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


def test_side_by_side_streams_batches_of_pairs(clip, predict_pipe, tmp_path, predict_calls):

    out = tmp_path / 'side.mkv'
    assert predict.predict_video(predict_pipe, clip, out, batch=4, side_by_side=True) == FRAMES - 1
    assert predict_calls == [(4, 4), (1, 4)]
    written = read_video(out)
    assert len(written) == FRAMES - 1 and written[0].shape == (HEIGHT, 3 * WIDTH, 3)
    frames = read_video(clip)
    k = 1
    image, colours, mask = np.split(written[k][..., ::-1].astype(float), 3, axis=1)
    assert mean_diff(image, frames[k][..., ::-1]) < CODEC_TOL
    assert mean_diff(colours, flow_colours(predict_pipe, frames[k], frames[k + 1])) < CODEC_TOL
    _, occ_mask, _ = predict_pipe.predict_pair(frames[k], frames[k + 1])
    assert mean_diff(mask, np.repeat(occ_mask, 3, axis=2) * 255) < CODEC_TOL
    assert (mask.max(axis=2) - mask.min(axis=2)).mean() < 3   # gray


def test_video_batch_defaults_to_2_pairs_a_call_on_the_cpu(clip, predict_pipe, tmp_path,
                                                           predict_calls):
    # On the CPU a batch of 2 is as fast per pair as the original's 8 (kept for GPUs), with 1.1
    # instead of 2.8 GB at 436 x 1024.
    from common.options import DEFAULT_VIDEO_BATCH
    assert DEFAULT_VIDEO_BATCH == {'cpu': 2, 'gpu': 8}
    assert predict.predict_video(predict_pipe, clip, tmp_path / 'flow.mp4') == FRAMES - 1
    assert predict_calls == [(2, 2), (2, 2), (1, 2)]


def test_interrupted_run_leaves_no_output(clip, predict_pipe, tmp_path, monkeypatch):
    written = []
    original = FFMPEG_VideoWriter.write_frame

    def write_then_interrupt(self, frame):
        if len(written) == 2:
            raise KeyboardInterrupt
        written.append(frame.shape)
        original(self, frame)
    monkeypatch.setattr(FFMPEG_VideoWriter, 'write_frame', write_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        predict.predict_video(predict_pipe, clip, tmp_path / 'flow.mp4', batch=2)
    assert len(written) == 2
    assert list(tmp_path.iterdir()) == []


def test_failure_while_writing_ends_the_run_with_its_error_and_no_output(clip, predict_pipe,
                                                                         tmp_path, monkeypatch):
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
        predict.predict_video(predict_pipe, clip, tmp_path / 'flow.mp4', batch=2)
    assert len(rendered) == 3
    assert list(tmp_path.iterdir()) == []


def test_unknown_fps_falls_back_and_size_changes_are_refused(clip, predict_pipe, tmp_path, monkeypatch,
                                                             capsys):
    frames = moving_pattern(3, 64, 64)
    out = tmp_path / 'flow.mov'
    with monkeypatch.context() as patch:
        patch.setattr(cv2, 'VideoCapture', lambda path, *options: FakeCapture(frames))
        assert predict.predict_video(predict_pipe, clip, out) == 2
    assert 'warning: %s: the video reports no frame rate; writing at 25 fps' % clip in capsys.readouterr().err
    assert cv2.VideoCapture(str(out)).get(cv2.CAP_PROP_FPS) == 25
    out.unlink()

    grown = frames[:2] + [np.zeros((64, 128, 3), np.uint8)]
    with monkeypatch.context() as patch:
        patch.setattr(cv2, 'VideoCapture', lambda path, *options: FakeCapture(grown))
        with pytest.raises(UserError, match='frame 2 is 128x64 but frame 0 is 64x64'):
            predict.predict_video(predict_pipe, clip, out, batch=1)
    assert list(tmp_path.iterdir()) == []


def pixel_format(path):
    """The pixel format ffmpeg reports for the video stream of ``path`` (e.g. 'yuv420p')."""
    frames = imageio_ffmpeg.read_frames(str(path))
    try:
        return next(frames)['pix_fmt'].split('(')[0]
    finally:
        frames.close()


def test_odd_sized_video_is_padded_to_yuv420p_that_every_player_takes(clip, predict_pipe, tmp_path,
                                                                      monkeypatch):
    frames = [frame[:63, :95] for frame in moving_pattern(3)]
    out = tmp_path / 'odd.mp4'
    with monkeypatch.context() as patch:
        patch.setattr(cv2, 'VideoCapture', lambda path, *options: FakeCapture(frames))
        assert predict.predict_video(predict_pipe, clip, out) == 2
    assert pixel_format(out) == 'yuv420p'
    written = read_video(out)
    assert len(written) == 2 and written[0].shape == (64, 96, 3)
    shown = written[1][..., ::-1].astype(float)
    expected = flow_colours(predict_pipe, frames[1], frames[2])
    assert mean_diff(shown[:63, :95], expected) < CODEC_TOL
    # The padding repeats the last row and column.
    assert mean_diff(shown[63, :95], expected[62]) < CODEC_TOL
    assert mean_diff(shown[:63, 95], expected[:, 94]) < CODEC_TOL
