"""The settings record of a folder of predicted flows, ``predict_settings.json``: the identity
of the weights, the network config, the network input size (and, for predict_new_data.py's
folders, the output format) that wrote its files.

A restart skips the files that are complete, so a folder must never hold flows of two
settings: ``check_settings`` refuses, before anything is written, a folder written with other
settings, or one with files but no record. The record is written with the folder's first
flow (``record_on_first_output``). ``main.py --predict`` (``engine.submission``) and
``predict_new_data.py --frames/--pairs`` (``engine.predict``) both keep one.
"""
import hashlib
import json
import os

from common import files
from common.errors import UserError

SETTINGS_FILE = 'predict_settings.json'


def weights_sha256(network):
    """sha256 over the names, shapes and float values of the loaded weights.

    It identifies what was loaded, whatever the checkpoint file is called.
    """
    from network.checkpoint import parameters_by_name   # here: the onnxruntime backend runs without MXNet
    digest = hashlib.sha256()
    for name, param in sorted(parameters_by_name(network).items()):
        array = param.data(param.list_ctx()[0]).asnumpy()
        digest.update(('%s %s %s\n' % (name, array.dtype.str, array.shape)).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


_SETTING_NAMES = {'weights_sha256': 'checkpoint weights sha256',
                  'network_size': 'network input size',
                  'network_class': 'network class', 'network_config': 'network config',
                  'format': 'output format'}


def network_identity(pipe):
    """What a network's flows depend on besides their inputs: its class, config and weights.
    Batch size and devices change nothing but float noise; --occ_mask only adds files."""
    return {'network_class': pipe.network_class,
            # as the file wrote it: records written before configs were checked compare equal
            'network_config': (pipe.config.raw or {}).get('network'),
            # the onnxruntime backend knows it from its cache record (engine.onnx_backend)
            'weights_sha256': (pipe.weights_sha256() if hasattr(pipe, 'weights_sha256')
                               else weights_sha256(pipe.network))}


def as_recorded(settings):
    """``settings`` as the record reads back (lists for tuples), to compare with it."""
    return json.loads(json.dumps(settings))


def _shown(key, value):
    if key == 'network_size' and value is None:
        return "each pair's own size rounded up to multiples of 64"
    if value is None:
        return 'unknown'
    if key == 'network_size':
        return 'x'.join(map(str, value))
    if key == 'weights_sha256':
        return value[:12] + '...'
    return json.dumps(value)


def check_settings(folder, settings, writer, outputs=None):
    """Raise UserError unless ``folder`` is new, empty, or was written with ``settings``.

    ``writer`` names the tool in the message (``--predict``). Without a record, a folder that
    holds files is refused; with ``outputs``, only one that holds any of those files (the
    others, such as a folder's own frames, are not the flows of any settings).
    """
    record = os.path.join(folder, SETTINGS_FILE)
    retry = 'move or delete %s to predict again with these settings' % folder
    if not os.path.exists(record):
        if (any(os.path.lexists(path) for path in outputs) if outputs is not None
                else any(files for _, _, files in os.walk(folder))):
            raise UserError('%s: holds files but no %s, so the checkpoint and settings that '
                            'wrote them are unknown; %s' % (folder, SETTINGS_FILE, retry))
        return
    try:
        with open(record) as f:
            written = json.load(f)
    except (OSError, ValueError) as e:
        raise UserError('%s: unreadable settings record (%s); %s' % (record, e, retry)) from None
    if not isinstance(written, dict):
        raise UserError('%s: not a settings record; %s' % (record, retry))
    differing = [key for key in settings if written.get(key) != settings[key]]
    if differing:
        changes = '; '.join('%s %s, now %s' % (_SETTING_NAMES.get(k, k), _shown(k, written.get(k)),
                                                _shown(k, settings[k])) for k in differing)
        raise UserError('%s: written by %s with other settings (%s); %s'
                        % (folder, writer, changes, retry))


def write_settings(folder, settings):
    """Write the record, unless the folder has one (``check_settings`` found it equal)."""
    record = os.path.join(folder, SETTINGS_FILE)
    if not os.path.exists(record):
        with files.atomic_output(record) as tmp, open(tmp, 'w') as f:
            json.dump(settings, f, indent=1, sort_keys=True)
            f.write('\n')


def record_on_first_output(folder, settings):
    """A callable for the writers to call before each output: the first call writes the
    record. A run stopped before its first flow (Ctrl-C, a damaged frame, no memory) leaves no
    record behind, which would refuse the folder to other settings though it holds no flows."""
    written = []

    def before_output():
        if not written:
            write_settings(folder, settings)
            written.append(True)
    return before_output
