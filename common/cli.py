"""The one place that turns a user error or an interrupt into a message and an exit status."""
import argparse
import os
import sys

from common.errors import UserError

USER_ERROR = 2      # a problem the user can fix: one line naming the file or option
INTERRUPTED = 130   # Ctrl-C, as a shell reports a process ended by SIGINT


def run(body):
    """Call ``body()`` and return the exit status: its own (None meaning 0), 2 for a UserError
    (printed as ``error: <message>``), 130 for Ctrl-C (``interrupted``; outputs are written
    atomically, so nothing half-written is left)."""
    try:
        return body() or 0
    except UserError as error:
        print('error: %s' % error, file=sys.stderr)
        return USER_ERROR
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
