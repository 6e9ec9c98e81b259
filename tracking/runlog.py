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
    """

    def __init__(self, path, echo=False, sinks=()):
        self.path = path
        self.echo = echo
        self.sinks = list(sinks)
        try:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            self._file = open(path, 'a')
        except OSError as error:
            raise UserError('%s: cannot write the log (%s)' % (path, error.strerror or error)) from None

    def log(self, message):
        now = datetime.datetime.now()
        line = now.strftime('[%s] ' % TIME_FORMAT) + message
        self._file.write(line + '\n')
        self._file.flush()
        if self.echo:
            print(line, flush=True)
        for sink in self.sinks:
            sink.add_line(message, now.timestamp())

    def learning_rate(self, steps, lr):
        """Sinks only: the learning rate at ``steps`` (the log lines do not hold it)."""
        if lr is not None:
            for sink in self.sinks:
                sink.add_scalar(LEARNING_RATE_TAG, lr, steps)

    def validation_images(self, steps, predict):
        """Sinks only: ``predict()`` -> (flow (H, W, 2) in (x, y) px, occlusion mask image
        (H, W) uint8) of one validation pair, or None; called only when a sink wants them."""
        for sink in self.sinks:
            sink.add_validation_images(steps, predict)

    def close(self):
        self._file.close()
        for sink in self.sinks:
            sink.close()


def events_folder(log_path):
    """Where the events of the run logged at ``log_path`` go: ``tensorboard/{run_id}/`` beside
    the log."""
    folder, name = os.path.split(log_path)
    run_id = name[:-len('.log')] if name.endswith('.log') else name
    return os.path.join(folder, 'tensorboard', run_id)
