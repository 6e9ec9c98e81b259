"""Run logs in the original's format: ``logs/{run_id}.log``, one
``[YYYY/MM/DD HH:MM:SS] key=value, ...`` line per event (training and validation alike)."""
import datetime
import os

from common.errors import UserError


class RunLog:
    """``logs/{run_id}.log``: one ``[YYYY/MM/DD HH:MM:SS] key=value, ...`` line per event."""

    def __init__(self, path, echo=False):
        self.path = path
        self.echo = echo
        try:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            self._file = open(path, 'a')
        except OSError as error:
            raise UserError('%s: cannot write the log (%s)' % (path, error.strerror or error)) from None

    def log(self, message):
        line = datetime.datetime.now().strftime('[%Y/%m/%d %H:%M:%S] ') + message
        self._file.write(line + '\n')
        self._file.flush()
        if self.echo:
            print(line, flush=True)

    def close(self):
        self._file.close()


def format_pairs(pairs):
    return ', '.join('%s=%s' % (k, v) for k, v in pairs)
