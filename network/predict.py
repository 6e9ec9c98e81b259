"""Prediction for new data: load a network for a config and checkpoint, run it on an image pair
or on the consecutive frames of a video.

``predict_new_data.py`` is a thin command line over these functions.
"""
import contextlib
import itertools
import math
import os
import sys

import cv2
import flow_vis
import numpy as np
from moviepy.video.io.ffmpeg_writer import FFMPEG_VideoWriter
from tqdm import tqdm

from reader import flowio

from .checkpoint import find_checkpoint
from .config import load_config
from .errors import UserError
from .pipeline import MAX_SIDE_PX, Pipeline

# moviepy's streaming writer encodes with libx264 by default; these containers take H.264
# (.webm, .ogv and .gif need other codecs and fail with it).
VIDEO_OUTPUT_EXTENSIONS = ('.mp4', '.mkv', '.mov', '.avi')
FALLBACK_FPS = 25.0   # when OpenCV reports no frame rate for the input


def load_pipeline(config_name, checkpoint_spec, ctx=None):
    """Pipeline for ``config_name`` with the checkpoint ``-c`` names loaded; returns (pipe, path)."""
    config = load_config(config_name)
    path, _, _ = find_checkpoint(checkpoint_spec)
    pipe = Pipeline(config, ctx)
    pipe.load(path)
    return pipe, path


def check_size(path, shape):
    """Raise UserError unless an image or frame of ``shape`` is small enough for the network."""
    height, width = shape[:2]
    if max(height, width) > MAX_SIDE_PX:
        raise UserError('%s: %dx%d is too large: at most %d px per side (MXNet cannot resize to '
                        '32768 or more)' % (path, width, height, MAX_SIDE_PX))


def read_pair(path1, path2):
    """Two images as the original's predict_new_data.py fed them: OpenCV BGR uint8."""
    # Quirk Q7, kept for compatibility with the original's predict_new_data.py: new data is fed
    # in OpenCV's BGR order (the Chairs and Sintel training readers give RGB).
    img1, img2 = flowio.read_image(path1), flowio.read_image(path2)
    check_size(path1, img1.shape)
    if img1.shape != img2.shape:
        raise UserError('%s is %dx%d but %s is %dx%d: the two images must have the same size'
                        % (path1, img1.shape[1], img1.shape[0], path2, img2.shape[1], img2.shape[0]))
    return img1, img2


def occ_mask_image(occ_mask):
    """(H, W, 1) mask in [0, 1] -> (H, W) uint8 grayscale, white = visible in both images."""
    return np.round(np.clip(occ_mask[..., 0], 0, 1) * 255).astype(np.uint8)


def pair_outputs(out_path, occ_mask_path=None):
    """The files an image pair writes: the flow, and the occlusion mask if asked for."""
    return [out_path] + ([occ_mask_path] if occ_mask_path else [])


def check_image_pair(image_1, image_2, out_path, occ_mask_path=None):
    """Raise UserError now, before the network loads, for a bad input or output of
    predict_image_pair; return the two images."""
    flowio.check_flow_output_path(out_path)
    if occ_mask_path:
        flowio.check_image_output_path(occ_mask_path)
    flowio.check_output_paths(pair_outputs(out_path, occ_mask_path), inputs=[image_1, image_2])
    return read_pair(image_1, image_2)


def predict_image_pair(pipe, image_1, image_2, out_path, occ_mask_path=None, resize=None):
    """Write the flow from image_1 to image_2 to ``out_path`` (kind by extension); return it.

    With ``occ_mask_path`` the occlusion mask is written too: both files or neither, and a
    failure leaves the files that were at these paths before as they were.
    """
    img1, img2 = check_image_pair(image_1, image_2, out_path, occ_mask_path)
    flow, occ_mask, _ = pipe.predict_pair(img1, img2, resize=resize)
    with flowio.atomic_outputs(*pair_outputs(out_path, occ_mask_path)) as tmps:
        flowio.write_flow(tmps[0], flow)
        if occ_mask_path:
            flowio.write_image(tmps[1], occ_mask_image(occ_mask))
    return flow, occ_mask


# --- video --------------------------------------------------------------------------------

def check_video_output_path(path):
    """Raise UserError now, before any work, unless ``path`` is a video kind we can write."""
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext not in VIDEO_OUTPUT_EXTENSIONS:
        raise UserError("%s: unsupported video output extension '%s' (supported: %s)"
                        % (os.fspath(path), ext, ', '.join(VIDEO_OUTPUT_EXTENSIONS)))
    return ext


@contextlib.contextmanager
def open_video(path):
    """An opened cv2.VideoCapture for ``path``, released on exit; UserError if it cannot open."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UserError('%s: %s' % (path, 'not a regular file' if os.path.exists(path)
                                    else 'file not found'))
    capture = cv2.VideoCapture(path)
    try:
        if not capture.isOpened():
            raise UserError('%s: cannot open video (corrupt or unsupported format)' % path)
        yield capture
    finally:
        capture.release()


def read_frames(capture, path):
    """Yield the decoded frames (H, W, 3) uint8 BGR one by one; they must all have one size."""
    size = None
    for index in itertools.count():
        ok, frame = capture.read()
        if not ok:
            return
        if size is None:
            size = frame.shape
        elif frame.shape != size:
            raise UserError('%s: frame %d is %dx%d but frame 0 is %dx%d: frames must keep one size'
                            % (path, index, frame.shape[1], frame.shape[0], size[1], size[0]))
        yield frame


def first_two_frames(frames, path):
    """The first two frames of the iterator ``frames``; UserError for a video with fewer."""
    first_two = list(itertools.islice(frames, 2))
    if not first_two:
        raise UserError('%s: no frame decodes (corrupt or unsupported video)' % path)
    if len(first_two) < 2:
        raise UserError('%s: has a single frame; flow needs at least two frames' % path)
    return first_two


def check_video_input(path):
    """Raise UserError now, before the network loads, unless ``path`` decodes two frames."""
    with open_video(path) as capture:
        check_size(path, first_two_frames(read_frames(capture, path), path)[0].shape)


def check_video(video_path, out_path):
    """Raise UserError now, before the network loads, for a bad input or output of predict_video."""
    check_video_output_path(out_path)
    flowio.check_output_paths([out_path], inputs=[video_path])
    check_video_input(video_path)


def video_fps(capture, path):
    """The frame rate OpenCV reports, or 25 with a warning line when it reports none."""
    fps = capture.get(cv2.CAP_PROP_FPS)
    if not math.isfinite(fps) or fps <= 0:
        print('warning: %s: the video reports no frame rate; writing at %g fps' % (path, FALLBACK_FPS),
              file=sys.stderr)
        return FALLBACK_FPS
    return fps


def pair_batches(frames, batch):
    """Group consecutive frames into (firsts, seconds) lists of at most ``batch`` pairs."""
    firsts, seconds, previous = [], [], None
    for frame in frames:
        if previous is not None:
            firsts.append(previous)
            seconds.append(frame)
            if len(firsts) == batch:
                yield firsts, seconds
                firsts, seconds = [], []
        previous = frame
    if firsts:
        yield firsts, seconds


def render_video_frame(frame_bgr, flow, occ_mask, side_by_side=False):
    """The flow colours (RGB), or [frame | flow colours | occlusion mask] with ``side_by_side``."""
    colours = flow_vis.flow_to_color(flow, convert_to_bgr=False)
    if not side_by_side:
        return colours
    mask = np.repeat(occ_mask_image(occ_mask)[..., None], 3, axis=2)
    return np.concatenate([frame_bgr[..., ::-1], colours, mask], axis=1)


class StreamingVideoWriter:
    """moviepy's streaming ffmpeg writer, with ffmpeg's failures turned into one-line UserErrors.

    A context manager: a clean exit finishes the file; an exception kills ffmpeg at once.
    Frames of an odd width or height get their last column or row repeated: moviepy encodes
    H.264 as yuv420p, the pixel format every player takes, only when both sides are even.
    """

    def __init__(self, path, size, fps, name=None):
        self.name = name or os.fspath(path)   # the path to name in errors (not the temp file)
        width, height = size
        self.size = (width + width % 2, height + height % 2)
        # Default codec libx264, yuv420p at these even sizes, at -r fps rounded to 0.01.
        self.writer = FFMPEG_VideoWriter(os.fspath(path), self.size, fps)

    def write(self, frame_rgb):
        height, width = frame_rgb.shape[:2]
        if (width, height) != self.size:
            padding = ((0, self.size[1] - height), (0, self.size[0] - width), (0, 0))
            frame_rgb = np.pad(frame_rgb, padding, mode='edge')
        try:
            self.writer.write_frame(frame_rgb)
        except OSError as error:
            raise UserError('%s: ffmpeg failed while encoding (%s)'
                            % (self.name, ' '.join(str(error).split())[:300])) from None

    def close(self):
        proc, self.writer.proc = self.writer.proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError):   # a dead ffmpeg reports below
            proc.stdin.close()
        message = proc.stderr.read().decode(errors='replace')
        proc.stderr.close()
        proc.wait()
        if proc.returncode:
            lines = message.strip().splitlines() or ['exit status %d' % proc.returncode]
            raise UserError('%s: ffmpeg could not write the video (%s)' % (self.name, lines[0].strip()))

    def abort(self):
        proc, self.writer.proc = self.writer.proc, None
        if proc is None:
            return
        proc.kill()
        with contextlib.suppress(OSError):
            proc.stdin.close()
        proc.stderr.close()
        proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, traceback):
        if exc_type is None:
            self.close()
        else:
            self.abort()


def predict_video(pipe, video_path, out_path, batch=8, resize=None, side_by_side=False):
    """Write the flow between consecutive frames of ``video_path`` as a video; return its frames.

    Frame k of the output shows the flow from input frame k to k+1, in flow_vis colours, at the
    input's frame rate. Frames are streamed: at most ``batch`` pairs are in memory at a time.
    The output appears only when complete (written beside it, then renamed).
    """
    ext = check_video_output_path(out_path)
    flowio.check_output_paths([out_path], inputs=[video_path])
    if batch < 1:
        raise UserError('--batch %d: expected a positive number of frame pairs' % batch)
    video_path = os.fspath(video_path)
    with open_video(video_path) as capture:
        fps = video_fps(capture, video_path)
        frame_count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        frames = read_frames(capture, video_path)
        # Quirk Q7, kept for compatibility with the original's predict_new_data.py: frames are
        # fed in OpenCV's BGR order.
        first_two = first_two_frames(frames, video_path)
        check_size(video_path, first_two[0].shape)
        height, width = first_two[0].shape[:2]
        size = (width * (3 if side_by_side else 1), height)
        written = 0
        # The same temp-then-rename writer as every flow file: no half-written OUT, ever.
        # disable=None: a progress bar only on a terminal, where leave=False wipes its line
        # before an error line; in a log file the error would run on from the bar's line.
        with flowio.atomic_output(out_path, ext) as tmp, \
                StreamingVideoWriter(tmp, size, fps, name=out_path) as writer, \
                tqdm(total=frame_count - 1 if frame_count > 1 else None, unit='frame',
                     desc='flow', leave=False, disable=None) as bar:
            for firsts, seconds in pair_batches(itertools.chain(first_two, frames), batch):
                results = pipe.predict(firsts, seconds, batch_size=batch, resize=resize)
                for frame, (flow, occ_mask, _) in zip(firsts, results):
                    writer.write(render_video_frame(frame, flow, occ_mask, side_by_side))
                    written += 1
                    bar.update()
    return written


def video_format(path):
    """(fps, width, height) of a video file as OpenCV reads them back."""
    with open_video(path) as capture:
        return (capture.get(cv2.CAP_PROP_FPS), int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
                int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
