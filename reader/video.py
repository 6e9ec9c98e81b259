"""Video files: frames read with OpenCV, H.264 yuv420p written with moviepy's streaming ffmpeg
writer. Any problem with a file is a ``UserError`` naming it.

A damaged frame is refused, not passed on: ffmpeg conceals what it cannot decode and only
logs an error, so the reading collects what the decoder logs (at ffmpeg's error level, set
below unless the user set ``OPENCV_FFMPEG_LOGLEVEL``) and any message is an error naming the
frame.
"""
import contextlib
import itertools
import math
import os
import re
import sys

import cv2
import numpy as np
from moviepy.video.io.ffmpeg_writer import FFMPEG_VideoWriter

from common.errors import UserError
from reader.flowio import decoder_messages

# ffmpeg's errors (AV_LOG_ERROR, 16) reach OpenCV's log, where read_frames collects them; its
# warnings and information do not (a level set by the user is kept; lines above 16 pass).
os.environ.setdefault('OPENCV_FFMPEG_LOGLEVEL', '16')
_FFMPEG_LINE = re.compile(r'^\[OPENCV:FFMPEG:(\d+)\]|^\[[^\]]+ @ 0x[0-9a-f]+\]')


def _ffmpeg_error(line):
    """Whether ``line`` is ffmpeg's (through OpenCV's log, or its own) at error level or worse."""
    match = _FFMPEG_LINE.match(line)
    return bool(match) and (match.group(1) is None or int(match.group(1)) <= 16)


def frame_messages():
    """decoder_messages for ffmpeg: its error lines, on standard output or error."""
    return decoder_messages(_ffmpeg_error, fds=(1, 2))


# moviepy's streaming writer encodes with libx264 by default; these containers take H.264
# (.webm, .ogv and .gif need other codecs and fail with it).
VIDEO_OUTPUT_EXTENSIONS = ('.mp4', '.mkv', '.mov', '.avi')
FALLBACK_FPS = 25.0   # when OpenCV reports no frame rate for the input


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
    # Everything printed while it opens (ffmpeg's complaints, OpenCV's warning that no backend
    # took the file) goes into the error line, or nowhere when it opens.
    with decoder_messages(lambda line: True, fds=(1, 2)) as messages:
        # One decoding thread: ffmpeg then reports a damaged frame while that frame is being
        # read, the same one on every run (threads report it a frame or two later, by chance).
        capture = cv2.VideoCapture(path, cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1])
    try:
        if not capture.isOpened():
            raise UserError('%s: cannot open video (corrupt or unsupported format%s)'
                            % (path, _said(messages)))
        yield capture
    finally:
        capture.release()


def _said(messages):
    return '; the decoder says: %s' % '; '.join(messages)[:300] if messages else ''


def frames_announced(capture):
    """The frame count the container announces (0 when it announces none)."""
    count = capture.get(cv2.CAP_PROP_FRAME_COUNT)
    return int(count) if math.isfinite(count) and count > 0 else 0


def read_frames(capture, path, stop_at_damage=False):
    """Yield the decoded frames (H, W, 3) uint8 BGR one by one; they must all have one size.

    A frame the decoder complains about is an error naming it; with ``stop_at_damage`` the
    frames end before it instead (a line on standard error says so).
    """
    size = None
    for index in itertools.count():
        with frame_messages() as messages:
            ok, frame = capture.read()
        if messages and ok:
            if not stop_at_damage:
                raise UserError('%s: frame %d is damaged%s (with --accept_short_video the flow '
                                'of the frames before it is written)' % (path, index,
                                                                         _said(messages)))
            print('warning: %s: frame %d is damaged%s; the frames end before it'
                  % (path, index, _said(messages)), file=sys.stderr)
            return
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


def video_fps(capture, path):
    """The frame rate OpenCV reports, or 25 with a warning line when it reports none."""
    fps = capture.get(cv2.CAP_PROP_FPS)
    if not math.isfinite(fps) or fps <= 0:
        print('warning: %s: the video reports no frame rate; writing at %g fps' % (path, FALLBACK_FPS),
              file=sys.stderr)
        return FALLBACK_FPS
    return fps


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
        # Default codec libx264, yuv420p at these even sizes, at -r fps rounded to 0.01. x264's
        # 'veryfast' preset instead of moviepy's 'medium': less than half the CPU per flow frame,
        # on the cores the network runs on, and smaller files (docs/performance.md, "Video batch").
        self.writer = FFMPEG_VideoWriter(os.fspath(path), self.size, fps, preset='veryfast')

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


def video_format(path):
    """(fps, width, height) of a video file as OpenCV reads them back."""
    with open_video(path) as capture:
        return (capture.get(cv2.CAP_PROP_FPS), int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
                int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
