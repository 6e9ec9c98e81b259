"""The environment variables this project reads, checked before any work starts: every
``MASKFLOWNET_*`` variable must be one of ``VARIABLES`` (a misspelt one is an error naming the
closest known one, not a setting silently ignored) with a value of its kind, and
``OMP_NUM_THREADS``, which MXNet aborts on unless it is a whole number, must be one.
"""
import difflib
import os
import urllib.parse

from common.errors import UserError

PREFIX = 'MASKFLOWNET_'
# The dataset keys of reader.roots.DATASETS (a test keeps the two equal).
DATASET_KEYS = ('chairs', 'things3d', 'sintel', 'kitti2012', 'kitti2015', 'hd1k')
VARIABLES = {
    'MASKFLOWNET_DATASETS': ('file', 'the dataset roots file (instead of config/datasets.yaml)'),
    **{PREFIX + key.upper(): ('folder', 'the %s dataset root' % key) for key in DATASET_KEYS},
    'MASKFLOWNET_WEIGHTS_URL': ('url', "a mirror of the original's repository for --download"),
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
    if threads is not None and not (threads.strip().isdigit() and int(threads) > 0):
        raise UserError('environment variable OMP_NUM_THREADS=%r: must be a positive whole '
                        'number of threads (MXNet aborts on anything else)' % threads)


def _check_value(name, value, kind):
    where = 'environment variable %s=%r' % (name, value)
    path = os.path.expanduser(value)
    if kind == 'file' and not os.path.isfile(path):
        raise UserError('%s: %s' % (where, 'not a regular file' if os.path.exists(path)
                                    else 'no such file'))
    if kind == 'url':
        parts = urllib.parse.urlsplit(value)
        if parts.scheme not in ('http', 'https', 'file') or (parts.scheme != 'file'
                                                            and not parts.netloc):
            raise UserError('%s: not an http(s):// or file:// address (e.g. '
                            'https://github.com/microsoft/MaskFlownet/raw)' % where)
    if kind == 'output':
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise UserError('%s: its folder %s does not exist' % (where, folder))
