"""Run logs: ``logs/{run_id}.log``, one line per event in the original's format (see
``tracking.logformat``), and the views that follow the log (TensorBoard events, see
``tracking.events``), which the caller hands in as sinks.
"""
import datetime
import os

from common.errors import UserError

from .logformat import LEARNING_RATE_TAG, TIME_FORMAT


class RunLog:
    """``logs/{run_id}.log``: one ``[YYYY/MM/DD HH:MM:SS] key=value, ...`` line per event.

    ``sinks``: views that follow the log, such as ``tracking.events.EventSink``: each line goes
    to their ``add_line``, and the events-only values (learning rate, validation images) to
    their ``add_scalar`` and ``add_validation_images``. A sink never stops the caller.

    ``hold``: keep the lines (echoed as they come) until ``release()``, so that a run that
    fails before it really started leaves no log, and a resumed run's log is not changed;
    closed without ``release()``, nothing is written.
    """

    def __init__(self, path, echo=False, sinks=(), hold=False):
        self.path = path
        self.echo = echo
        self.sinks = list(sinks)
        self._held = [] if hold else None
        self._file = None
        if not hold:
            self._open()

    def _open(self):
        try:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            self._file = open(self.path, 'a')
        except OSError as error:
            raise UserError('%s: cannot write the log (%s)' % (self.path, error.strerror or error)) from None

    @property
    def released(self):
        return self._held is None

    def release(self):
        """Write the lines held so far, and every later one as it comes."""
        if self._held is None:
            return
        self._open()   # first: a log that cannot be opened stays held (nothing written)
        held, self._held = self._held, None
        for line, message, wall_time in held:
            self._write(line, message, wall_time)

    def log(self, message):
        now = datetime.datetime.now()
        line = now.strftime('[%s] ' % TIME_FORMAT) + message
        if self.echo:
            print(line, flush=True)
        if self._held is not None:
            self._held.append((line, message, now.timestamp()))
        else:
            self._write(line, message, now.timestamp())

    def _write(self, line, message, wall_time):
        try:
            self._file.write(line + '\n')
            self._file.flush()
        except OSError as error:
            raise UserError('%s: cannot write the log (%s)' % (self.path, error.strerror or error)) from None
        for sink in self.sinks:
            sink.add_line(message, wall_time)

    def learning_rate(self, steps, lr):
        """Sinks only: the learning rate at ``steps`` (the log lines do not hold it)."""
        if lr is not None and self.released:
            for sink in self.sinks:
                sink.add_scalar(LEARNING_RATE_TAG, lr, steps)

    def validation_images(self, steps, predict):
        """Sinks only: ``predict()`` -> (flow (H, W, 2) in (x, y) px, occlusion mask image
        (H, W) uint8) of one validation pair, or None; called only when a sink wants them."""
        if self.released:
            for sink in self.sinks:
                sink.add_validation_images(steps, predict)

    def close(self):
        if self._file is not None:
            self._file.close()
            self._file = None
        for sink in self.sinks:
            sink.close()


def events_folder(log_path):
    """Where the events of the run logged at ``log_path`` go: ``tensorboard/{run_id}/`` beside
    the log."""
    folder, name = os.path.split(log_path)
    run_id = name[:-len('.log')] if name.endswith('.log') else name
    return os.path.join(folder, 'tensorboard', run_id)
