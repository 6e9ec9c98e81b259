"""The environment variables this project reads, checked before any work starts: every
``MASKFLOWNET_*`` variable must be one of ``VARIABLES`` (a misspelt one is an error naming the
closest known one, not a setting silently ignored) with a value of its kind, and
``OMP_NUM_THREADS``, which MXNet aborts on unless it is a whole number, must be one.
"""
import difflib
import os
import re
import urllib.parse

from common.errors import UserError

PREFIX = 'MASKFLOWNET_'
MAX_THREADS = 4096
# The dataset keys of reader.roots.DATASETS (a test keeps the two equal).
DATASET_KEYS = ('chairs', 'things3d', 'sintel', 'kitti2012', 'kitti2015', 'hd1k')
VARIABLES = {
    'MASKFLOWNET_DATASETS': ('file', 'the dataset roots file (instead of config/datasets.yaml)'),
    **{PREFIX + key.upper(): ('folder', 'the %s dataset root' % key) for key in DATASET_KEYS},
    'MASKFLOWNET_WEIGHTS_URL': ('url', "a mirror of the original's repository for --download"),
    # Its folder may exist only on launch.py's machine: worker 0 creates it where it runs.
    'MASKFLOWNET_RUN_RECORD': ('output', 'set by launch.py: where worker 0 names its run'),
    'MASKFLOWNET_ONNX_CACHE': ('folder', 'where --backend onnxruntime caches its exported models '
                                         '(instead of weights/onnx)'),
}


def check_environment(environ=None):
    """Raise UserError (one line) for an unknown ``MASKFLOWNET_*`` variable or a value of the
    wrong kind; an empty value counts as unset. Dataset roots are checked where they are used
    (a command that reads no dataset does not care)."""
    environ = os.environ if environ is None else environ
    for name in sorted(environ):
        value = environ[name]
        if name.startswith(PREFIX):
            if name not in VARIABLES:
                close = difflib.get_close_matches(name, VARIABLES, n=1, cutoff=0.7)
                raise UserError('environment variable %s: unknown%s (known: %s)' % (
                    name, " (did you mean %s?)" % close[0] if close else '',
                    ', '.join(sorted(VARIABLES))))
            if value:
                _check_value(name, value, VARIABLES[name][0])
    threads = environ.get('OMP_NUM_THREADS')
    if threads is not None and not (re.fullmatch(r'\s*[0-9]{1,5}\s*', threads)
                                    and 0 < int(threads) <= MAX_THREADS):
        raise UserError('environment variable OMP_NUM_THREADS=%r: must be a whole number of '
                        'threads from 1 to %d (MXNet aborts on anything else)'
                        % (threads, MAX_THREADS))


def _check_value(name, value, kind):
    where = 'environment variable %s=%r' % (name, value)
    path = os.path.expanduser(value)
    if kind == 'file' and not os.path.isfile(path):
        raise UserError('%s: %s' % (where, 'not a regular file' if os.path.exists(path)
                                    else 'no such file'))
    if kind == 'url':
        try:
            parts = urllib.parse.urlsplit(value)
            parts.port   # parsed lazily: a bad port or address raises here
        except ValueError as error:
            raise UserError('%s: not an address (%s)' % (where, error)) from None
        if parts.scheme not in ('http', 'https', 'file') or (parts.scheme != 'file'
                                                            and not parts.netloc):
            raise UserError('%s: not an http(s):// or file:// address (e.g. '
                            'https://github.com/microsoft/MaskFlownet/raw)' % where)
