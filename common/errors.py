"""The one exception type for problems a user can fix (bad file, bad checkpoint, bad option).

The command-line scripts catch it once and print ``error: <message>`` on a single line.
Every message names the file or option at fault.
"""


class UserError(Exception):
    """A problem with the user's input, reported as one line that names the file or option."""
