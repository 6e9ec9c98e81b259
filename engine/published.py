"""The original MaskFlownet's published checkpoints: which exist, the network config that fits
each, and their download (``--download``) from the original repository at a pinned commit,
verified against the git blob id its tree records for the file.

Nothing here reaches the network unless ``download`` is called, which only ``--download`` does.
"""
import contextlib
import hashlib
import http.client
import os
import urllib.error
import urllib.request
from dataclasses import dataclass

from tqdm import tqdm

from common import files
from common.errors import UserError

# https://github.com/microsoft/MaskFlownet/raw/<commit>/weights/<file>; a mirror replaces the
# part before /<commit> through the environment variable.
REPOSITORY_URL = 'https://github.com/microsoft/MaskFlownet/raw'
URL_VARIABLE = 'MASKFLOWNET_WEIGHTS_URL'
TIMEOUT_S = 60        # per connection attempt and per read
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Published:
    run_id: str           # what -c takes: abbSep15
    file: str             # in the original's weights/ and ours
    network_class: str    # network.class of the configs it loads into
    config: str           # the config of the schedule step it finished
    training: str
    blob_id: str          # git blob id in the original's tree: sha1 of 'blob <size>\0' + content
    commit: str           # a commit of the original whose tree holds it

    @property
    def steps(self):
        return int(self.file[:-len('.params')].rpartition('_')[2])


_LATEST = '5cba12772e2201f0d1c1e27161d224e585334571'
PUBLISHED = (
    Published('abbSep15', 'abbSep15-1037_500000.params', 'MaskFlownet_S', 'MaskFlownet_S_ft.yaml',
              'Chairs + Things3D', '771c1b9a68630f6d53f0c6056f0fb85dbe434839', _LATEST),
    Published('dbbSep30', 'dbbSep30-1206_1000000.params', 'MaskFlownet_S',
              'MaskFlownet_S_sintel.yaml', 'Sintel fine-tuned',
              '3c6a62d21d1853ff88d0447e3ead8a943dab229f', _LATEST),
    Published('5adNov03', '5adNov03-0005_1000000.params', 'MaskFlownet', 'MaskFlownet_sintel.yaml',
              'Sintel fine-tuned', '384bceb4a19b3f3ef99da26c0f8620f4bf6eadbe', _LATEST),
    Published('8caNov12', '8caNov12-1532_300000.params', 'MaskFlownet', 'MaskFlownet_kitti.yaml',
              'KITTI fine-tuned', 'e26389a27182eb637f1fc338aa0b17a0d3f4ccd7', _LATEST),
    # Removed from the original's tree later by its authors; still at this commit.
    Published('771Sep25', '771Sep25-0735_500000.params', 'MaskFlownet_S', 'MaskFlownet_S_ft.yaml',
              'Chairs + Things3D', 'deb977b934d5f288d9ddff4343e4786bcf405db7',
              '852282fabf9c3329cf0fb0e9edc9d277cba4005b'),
)


def markdown_table():
    """The table of ``PUBLISHED`` that weights/README.md shows (a test keeps the two equal)."""
    rows = ['| `-c` | file | network | config | trained on |', '|---|---|---|---|---|']
    rows += ['| `%s` | `%s` | %s | `%s` | %s |' % (p.run_id, p.file, p.network_class.replace('_S', '-S'),
                                               p.config, p.training) for p in PUBLISHED]
    return '\n'.join(rows)


def lookup(spec):
    """The published checkpoint ``-c RUN[:STEPS]`` names (RUN a prefix of its run id), or None."""
    prefix, _, steps = spec.partition(':')
    if not prefix:
        return None
    found = [p for p in PUBLISHED if p.file.startswith(prefix) and '_' not in prefix
             and (not steps or steps == str(p.steps))]
    return found[0] if len(found) == 1 else None


def by_file(path):
    """The published checkpoint whose file ``path`` is named like, or None."""
    name = os.path.basename(os.fspath(path))
    return next((p for p in PUBLISHED if p.file == name), None)


def describe(entry):
    network = entry.network_class.replace('_S', '-S')
    return 'the original\'s %s checkpoint (%s, %s; config %s)' % (
        entry.run_id, network, entry.training, entry.config)


def check_network(entry, network_class, config_source=None, training=False):
    """Raise UserError, before any download, unless ``network_class`` fits ``entry``.

    ``training``: a MaskFlownet-S checkpoint also fits MaskFlownet, whose training starts
    from one (its weights go into the MaskFlownet-S stage).
    """
    head = training and (network_class, entry.network_class) == ('MaskFlownet', 'MaskFlownet_S')
    if network_class != entry.network_class and not head:
        raise UserError('%s: is %s, config %s builds %s: use %s' % (
            entry.run_id, describe(entry), config_source or 'CONFIG', network_class, entry.config))


@contextlib.contextmanager
def config_hints():
    """A published checkpoint loaded with the config of the other network is refused with the
    config that fits it (``5adNov03``: ``MaskFlownet_sintel.yaml``)."""
    from network.checkpoint import CheckpointMismatch   # here: launch.py reads this module without MXNet
    try:
        yield
    except CheckpointMismatch as error:
        entry = by_file(error.path)
        if entry is not None and error.guess == entry.network_class != error.network_name:
            raise UserError('%s (it is %s: use %s)' % (error.problem, describe(entry),
                                                       entry.config)) from None
        raise


def loaded_pipeline(config, path, ctx=None, keep_graph_memory=True):
    """A ``network.pipeline.Pipeline`` of ``config`` with the checkpoint ``path`` loaded (see
    ``config_hints`` for a published checkpoint under the other network's config)."""
    from network.pipeline import Pipeline   # here: launch.py reads this module without MXNet
    pipe = Pipeline(config, ctx, keep_graph_memory=keep_graph_memory)
    with config_hints():
        pipe.load(path)
    return pipe


def url(entry):
    base = os.environ.get(URL_VARIABLE) or REPOSITORY_URL
    return '%s/%s/weights/%s' % (base.rstrip('/'), entry.commit, entry.file)


def git_blob_id(path):
    """What ``git hash-object`` gives for the file: sha1 of ``blob <size>\\0`` + content."""
    digest = hashlib.sha1(b'blob %d\0' % os.path.getsize(path))
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(_CHUNK), b''):
            digest.update(chunk)
    return digest.hexdigest()


def download(entry, weights_dir, progress=True):
    """Download ``entry`` into ``weights_dir`` and return its path: written atomically and
    kept only if its git blob id is the one recorded; otherwise nothing is left at the target
    and a UserError says why."""
    target = os.path.join(weights_dir, entry.file)
    source = url(entry)
    files.remove_stale_temporaries(weights_dir)   # what killed downloads left behind
    with files.atomic_output(target) as tmp:
        received, expected = _fetch(source, tmp, entry.file, progress, target)
        if expected is not None and received != expected:
            raise UserError('%s: download from %s stopped after %s of %s (connection closed '
                            'early); nothing written' % (target, source, _size(received),
                                                         _size(expected)))
        blob_id = git_blob_id(tmp)
        if blob_id != entry.blob_id:
            raise UserError('%s: the file from %s is not the original\'s (git blob id %s, '
                            'expected %s); deleted, nothing written' % (target, source, blob_id,
                                                                        entry.blob_id))
    return target


def _fetch(source, tmp, name, progress, target):
    """Stream ``source`` into the file ``tmp``; returns (bytes received, Content-Length or None)."""
    def failed(error):
        reason = getattr(error, 'reason', None) or error
        return UserError('%s: download from %s failed (%s); nothing written'
                         % (target, source, reason))
    try:
        response = urllib.request.urlopen(source, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as error:
        raise UserError('%s: download from %s failed (HTTP %d %s); nothing written'
                        % (target, source, error.code, error.reason)) from None
    except (OSError, http.client.HTTPException) as error:
        raise failed(error) from None
    with response, open(tmp, 'wb') as out:
        length = response.headers.get('Content-Length')
        expected = int(length) if length and length.isdigit() else None
        received = 0
        # disable=None: no bar when stderr is not a terminal (logs, tests); leave=False: an
        # error after it stays the one line printed.
        with tqdm(total=expected, desc=name, unit='B', unit_scale=True, unit_divisor=1024,
                  disable=None if progress else True, leave=False) as bar:
            while True:
                try:
                    chunk = response.read(_CHUNK)
                except (OSError, http.client.HTTPException) as error:
                    raise failed(error) from None
                if not chunk:
                    break
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    return received, expected


def _size(count):
    return '%.1f MB' % (count / 1e6) if count >= 1e5 else '%d bytes' % count
