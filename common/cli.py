"""The one place that turns a user error or an interrupt into a message and an exit status."""
import argparse
import contextlib
import os
import signal
import sys
import threading

from common.errors import UserError

USER_ERROR = 2      # a problem the user can fix: one line naming the file or option
INTERRUPTED = 130   # Ctrl-C, as a shell reports a process ended by SIGINT


class Terminated(KeyboardInterrupt):
    """A termination signal (SIGTERM: a scheduler's preemption, kill, launch.py stopping a job;
    SIGHUP: the terminal or ssh connection went away), raised in the main thread as Ctrl-C's
    interrupt is, so that the same clean-up runs."""

    def __init__(self, signum=signal.SIGTERM):
        super().__init__()
        self.signal = signal.Signals(signum)

    @property
    def status(self):
        return 128 + self.signal


def _terminate(signum, frame):
    raise Terminated(signum)


TERMINATING = (signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def _terminations_raise():
    """SIGTERM and SIGHUP raise Terminated in the main thread while the block runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, _terminate) for signum in TERMINATING}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def run(body):
    """Call ``body()`` and return the exit status: its own (None meaning 0), 2 for a UserError
    (printed as ``error: <message>``), 130 for Ctrl-C (``interrupted``), 143 for SIGTERM and
    129 for SIGHUP (``terminated (SIGTERM)``). Outputs are written atomically, so nothing half-written is left."""
    try:
        with _terminations_raise():
            return body() or 0
    except UserError as error:
        print('error: %s' % error, file=sys.stderr)
        return USER_ERROR
    except Terminated as stop:
        print('terminated (%s)' % stop.signal.name, file=sys.stderr)
        return stop.status
    except KeyboardInterrupt:
        print('interrupted', file=sys.stderr)
        return INTERRUPTED


class ArgumentParser(argparse.ArgumentParser):
    """argparse, with its usage errors in the one-line form of every other error:
    ``error: <option>: <problem> (--help: usage)``, exit status 2 (argparse prints the whole
    usage first)."""

    def error(self, message):
        self.exit(USER_ERROR, 'error: %s (%s --help: usage)\n'
                  % (message, os.path.basename(self.prog)))


def add_checkpoint_options(parser, required=True):
    """``-c/--checkpoint`` and ``--download``, as every command line that loads weights has them."""
    parser.add_argument('-c', '--checkpoint', required=required, default=None,
                        help='a .params file, or a run id prefix in weights/ with an optional '
                             ':STEPS (RUN[:STEPS])')
    parser.add_argument('--download', action='store_true',
                        help="-c names a published checkpoint of the original (5adNov03, ...) "
                             "missing from weights/: download it (verified) first")
