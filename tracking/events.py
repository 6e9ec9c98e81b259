"""TensorBoard event files: written live during training (``EventSink``, a sink of the run's
``RunLog``) and converted from run logs (``write_log_events``), under the same tag names (see
``tracking.logformat``).

Written with tensorboardX (pure Python); ``tensorboard --logdir logs/tensorboard`` shows them.
Events are a view of the run, not its record: the text log is. So an EventSink that cannot
write (tensorboardX missing, disk full, ...) warns once and carries on without events.
"""
import itertools
import math
import os
import sys

import numpy as np

from .logformat import (FLOW_IMAGE_TAG, OCC_MASK_IMAGE_TAG, line_scalars, parse_pairs,
                     text_tag)

FLUSH_SECONDS = 30
_file_numbers = itertools.count()   # two writers of one process never share an event file


def summary_writer(folder, purge_step=None):
    """A tensorboardX SummaryWriter for ``folder`` with an event file of its own.

    ``purge_step``: TensorBoard hides the events at this step and later from the folder's
    earlier files (a resumed run logs those steps again).
    """
    from tensorboardX import SummaryWriter   # here: training without events needs no tensorboardX
    # Zero-padded: TensorBoard reads a folder's event files in name order, and the purge of a
    # resumed run's redone steps needs the newer file read after the older ('.10' < '.9').
    suffix = '.%010d.%06d' % (os.getpid(), next(_file_numbers))
    return SummaryWriter(folder, purge_step=purge_step, flush_secs=FLUSH_SECONDS,
                         filename_suffix=suffix)


def flow_colours(flow):
    """(H, W, 2) flow in (x, y) px -> (H, W, 3) uint8 RGB, flow_vis colours as predict writes."""
    import flow_vis
    return flow_vis.flow_to_color(np.asarray(flow), convert_to_bgr=False)


class EventSink:
    """Live events of one run in ``folder``; opened at the first event, never raising.

    A ``start=N`` line with N > 0 (a resume) opens the writer with ``purge_step=N + 1``: what an
    earlier invocation logged after the checkpoint it resumed from is hidden, as it is redone.
    """

    def __init__(self, folder):
        self.folder = folder
        self._writer = None
        self._failed = False
        self._after_start = False
        self._text_step = 0   # header texts go at the step of the latest start

    def add_line(self, message, wall_time=None):
        """The scalars (or the header text) of a log line, under the tags read_log gives it."""
        first_key = message.partition('=')[0]
        after_start, self._after_start = self._after_start, first_key == 'start'

        def write(writer):
            if first_key == 'steps':
                steps, scalars = line_scalars(parse_pairs(message))
                for tag, value in scalars:
                    # A diverged run's NaN stays in the text log: tensorboardX would print a
                    # warning line for it, and the curve has nothing to draw.
                    if math.isfinite(value):
                        writer.add_scalar(tag, value, steps, walltime=wall_time)
            else:
                writer.add_text(text_tag(first_key, after_start), message, self._text_step,
                                walltime=wall_time)

        if first_key == 'start':
            self._text_step = _start_steps(message)
            self._guarded(write, purge_step=self._text_step + 1 if self._text_step else None)
        else:
            self._guarded(write)

    def add_scalar(self, tag, value, steps):
        if not math.isfinite(float(value)):
            return
        self._guarded(lambda writer: writer.add_scalar(tag, float(value), steps))

    def add_validation_images(self, steps, predict):
        """The flow colours and occlusion mask that ``predict()`` gives: (flow (H, W, 2) in
        (x, y) px, mask image (H, W) uint8), or None: no images."""
        def write(writer):
            result = predict()
            if result is None:
                return
            flow, occ_mask_image = result
            if not np.isfinite(flow).all():   # a diverged network: no colours to show
                return
            writer.add_image(FLOW_IMAGE_TAG, flow_colours(flow), steps, dataformats='HWC')
            writer.add_image(OCC_MASK_IMAGE_TAG, occ_mask_image, steps, dataformats='HW')
        self._guarded(write)

    def close(self):
        if self._writer is not None:
            self._guarded(lambda writer: writer.close())
            self._writer = None

    def _guarded(self, write, purge_step=None):
        """Run ``write(writer)``; on the first failure warn once and write nothing more."""
        if self._failed:
            return
        try:
            if self._writer is None:
                self._writer = summary_writer(self.folder, purge_step)
            write(self._writer)
        except Exception as error:   # any failure of the optional view: training goes on
            self._failed = True
            print('warning: TensorBoard events in %s stopped (%s: %s); the run and its text '
                  'log go on' % (self.folder, type(error).__name__, error), file=sys.stderr)
            writer, self._writer = self._writer, None
            if writer is not None:
                try:
                    writer.close()
                except Exception:
                    pass


def _start_steps(message):
    try:
        return int(message.partition('=')[2].partition(',')[0])
    except ValueError:
        return 0


def write_log_events(parsed, folder):
    """Write a ParsedLog (``logformat.read_log``) as events in ``folder``; returns the count.

    Wall times are the log's time stamps. NaN and infinite values are left out, as live
    training leaves them out. The new event file hides every earlier one in ``folder`` (purge
    from step 0), so converting a log again replaces what TensorBoard shows without deleting
    any file.
    """
    writer = summary_writer(folder, purge_step=0)
    count = 0
    try:
        for tag, points in parsed.series.items():
            for steps, value, wall_time in points:
                if math.isfinite(value):
                    writer.add_scalar(tag, value, steps, walltime=wall_time)
                    count += 1
        for tag, steps, body, wall_time in parsed.texts:
            writer.add_text(tag, body, steps, walltime=wall_time)
    finally:
        writer.close()
    return count
