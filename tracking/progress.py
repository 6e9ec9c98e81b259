"""Training's live progress: one line on a terminal, rewritten in place as steps go by.

    step 1,250/20,000  1.84 steps/s  epe 3.217  lr 1.0e-04  val in 2m15s  ckpt in 6m50s  end in 2h49m

It is drawn only when its stream (standard error) is a terminal: in a log file or a pipe there
is no line at all, and the run log's lines (on standard output) are the original's, unchanged.
The line is wiped before anything else is printed (``clear``), so a log line or an error never
runs on from a fragment of it.

Speed is measured over the recent steps (the first step of a start, which builds the graphs,
aside; validations aside); the time to the end adds the remaining validations at the duration
of the last one.
"""
import collections
import os
import shutil
import sys
import time

WINDOW = 20                 # steps the speed and the moving EPE are measured over
REDRAW_S = 0.2              # at most this often


def is_terminal(stream):
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):   # no isatty, or a closed stream
        return False


def duration(seconds):
    """'45s', '4m10s', '1h05m', '2d03h'; '?' when unknown."""
    if seconds is None or seconds != seconds or seconds == float('inf'):
        return '?'
    seconds = int(round(max(seconds, 0)))
    if seconds < 60:
        return '%ds' % seconds
    if seconds < 3600:
        return '%dm%02ds' % divmod(seconds, 60)
    if seconds < 86400:
        return '%dh%02dm' % (seconds // 3600, seconds % 3600 // 60)
    return '%dd%02dh' % (seconds // 86400, seconds % 86400 // 3600)


def _until(steps, every):
    """Steps from ``steps`` to the next multiple of ``every``."""
    return every - steps % every


class TrainingProgress:
    """The progress line of a training run from step ``start`` to step ``end`` (the schedule's
    end or --max_steps; None if unknown), validating every ``validation_steps`` and saving
    every ``checkpoint_steps``. ``stream``: standard error by default; nothing is drawn
    unless it is a terminal. ``clock``: seconds, for tests."""

    def __init__(self, start, end, validation_steps, checkpoint_steps, stream=None,
                 clock=time.monotonic):
        self.stream = sys.stderr if stream is None else stream
        self.enabled = is_terminal(self.stream)
        self.start, self.end = start, end
        self.validation_steps, self.checkpoint_steps = validation_steps, checkpoint_steps
        self.clock = clock
        self._step_seconds = collections.deque(maxlen=WINDOW)
        self._epes = collections.deque(maxlen=WINDOW)
        self._validation_seconds = None
        self._drawn = False
        self._last_draw = None

    def step(self, steps, seconds, epe, lr):
        """Step ``steps`` took ``seconds`` (its data and its optimizer step) and gave ``epe``.
        The first step of a run is not timed: it builds the graphs and starts the data."""
        if seconds is not None and steps > self.start + 1:
            self._step_seconds.append(seconds)
        if epe is not None:
            self._epes.append(epe)
        if not self.enabled:
            return
        now = self.clock()
        if self._last_draw is None or now - self._last_draw >= REDRAW_S or steps == self.end:
            # one terminal row: a line that wraps could not be rewritten in place
            self._draw(self.line(steps, lr, max(self._width() - 1, 20)))
            self._last_draw = now

    def validation_took(self, seconds):
        self._validation_seconds = seconds

    @property
    def seconds_per_step(self):
        return sum(self._step_seconds) / len(self._step_seconds) if self._step_seconds else None

    def line(self, steps, lr, width=None):
        """The line's text at ``steps``; at most ``width`` characters, the least needed parts
        (learning rate, then time to the checkpoint, to the validation, the EPE) left out
        first, so that the time to the end stays."""
        per_step = self.seconds_per_step

        def eta(count):
            return None if per_step is None else count * per_step
        parts = [('step', 'step {:,}{}'.format(
            steps, '' if self.end is None else '/{:,}'.format(self.end)))]
        parts.append(('speed', '%.2f steps/s' % (1 / per_step) if per_step else '- steps/s'))
        if self._epes:
            parts.append(('epe', 'epe %.3f' % (sum(self._epes) / len(self._epes))))
        if lr is not None:
            parts.append(('lr', 'lr %.1e' % lr))
        parts.append(('val', 'val in %s' % duration(eta(_until(steps, self.validation_steps)))))
        parts.append(('ckpt', 'ckpt in %s' % duration(eta(_until(steps, self.checkpoint_steps)))))
        if self.end is not None:
            remaining = eta(self.end - steps)
            if remaining is not None and self._validation_seconds is not None:
                remaining += ((self.end // self.validation_steps - steps // self.validation_steps)
                              * self._validation_seconds)
            parts.append(('end', 'end in %s' % duration(remaining)))
        for dropped in (None, 'lr', 'ckpt', 'val', 'epe'):
            parts = [(name, text) for name, text in parts if name != dropped]
            text = '  '.join(text for _, text in parts)
            if width is None or len(text) <= width:
                break
        return text if width is None else text[:width]

    def _width(self):
        try:
            return os.get_terminal_size(self.stream.fileno()).columns
        except (AttributeError, ValueError, OSError):
            return shutil.get_terminal_size().columns

    def _draw(self, text):
        self.stream.write('\r' + text + '\x1b[K')
        self.stream.flush()
        self._drawn = True

    def clear(self):
        """Wipe the line (it comes back with the next step): before any other output."""
        if self._drawn:
            self.stream.write('\r\x1b[K')
            self.stream.flush()
            self._drawn = False
            self._last_draw = None

    def close(self):
        self.clear()
