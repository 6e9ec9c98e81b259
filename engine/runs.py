"""Run bookkeeping, in one place: run ids, the checkpoints of a run in ``weights/`` (listing,
``-c`` lookup, the newest one, pruning), how a run starts from ``-c`` (resume, branch or new
run), and the run record through which ``launch.py`` learns which run its job is.

A checkpoint is ``weights/{run_id}_{steps}.params`` with its optimizer state beside it in
``{run_id}_{steps}.states`` and the rest of its run's state in ``{run_id}_{steps}.run.json``
(``engine.runstate``); run ids are the original's (``8caNov12-1532``).
"""
import contextlib
import datetime
import hashlib
import json
import os
import re
import socket
import time
from dataclasses import dataclass
from typing import Optional

from common.errors import UserError
from common.files import OwnerLock, atomic_output, same_file

from . import published

# Relative to the working directory, as in the original: run the tools from the repo root.
WEIGHTS_DIR = 'weights'
KEEP_CHECKPOINTS = 3
_CHECKPOINT_NAME = re.compile(r'^(?P<run>.+)_(?P<steps>\d+)\.(?P<kind>params|states|run\.json)$')
# Set by launch.py: the file where worker 0 names its run (read back by read_run_record).
RUN_RECORD_ENV = 'MASKFLOWNET_RUN_RECORD'


def new_run_id(device_desc='', now=None):
    """Three hex characters and the start time, e.g. ``8caNov12-1532`` (the original's format)."""
    now = now or datetime.datetime.now()
    stamp = now.strftime('%b%d-%H%M')
    digest = hashlib.sha224((socket.gethostname() + stamp + device_desc + str(time.time_ns())).encode())
    return digest.hexdigest()[:3] + stamp


def unused_run_id(device_desc, weights_dir, log_path_of):
    """A new run id that no run in ``weights_dir`` (checkpoints, lock) or its log folder
    (``log_path_of(run_id)``) has: three hex characters a minute make a clash rare, not
    impossible, and a clash would mix two runs."""
    while True:
        run_id = new_run_id(device_desc)
        taken = [name for name in (os.listdir(weights_dir) if os.path.isdir(weights_dir) else [])
                 if name.startswith(run_id + '_') or name == run_id + '.lock']
        if not taken and not os.path.exists(log_path_of(run_id)):
            return run_id


def parse_checkpoint_name(name):
    """(run_id, steps, kind) of a file name ``RUN_STEPS.params``, ``.states`` or ``.run.json``,
    else None."""
    match = _CHECKPOINT_NAME.match(os.path.basename(os.fspath(name)))
    return (match['run'], int(match['steps']), match['kind']) if match else None


def list_checkpoints(weights_dir=WEIGHTS_DIR, run_id=None):
    """[(run_id, steps, path)] for every ``{run_id}_{steps}.params`` in ``weights_dir`` (of
    ``run_id`` alone if given), sorted by run id and steps."""
    if not os.path.isdir(weights_dir):
        return []
    found = []
    for name in os.listdir(weights_dir):
        parsed = parse_checkpoint_name(name)
        if parsed and parsed[2] == 'params' and run_id in (None, parsed[0]):
            found.append((parsed[0], parsed[1], os.path.join(weights_dir, name)))
    return sorted(found, key=lambda t: (t[0], t[1]))


def newest_checkpoint(run_id, weights_dir=WEIGHTS_DIR):
    """The path of the newest checkpoint of ``run_id`` in ``weights_dir``, or None."""
    mine = list_checkpoints(weights_dir, run_id)
    return mine[-1][2] if mine else None


def states_path(params_path):
    """The optimizer state saved with a checkpoint: ``RUN_STEPS.states`` beside its .params."""
    return os.fspath(params_path)[:-len('.params')] + '.states'


def prune_checkpoints(run_id, weights_dir, keep=KEEP_CHECKPOINTS):
    """Delete all but the newest ``keep`` checkpoints (.params, .states, .run.json) of
    ``run_id``, and the run's ``.states`` and ``.run.json`` files whose ``.params`` never
    arrived (a save killed between them, by an older version). Other runs' files are never
    touched."""
    mine = list_checkpoints(weights_dir, run_id)
    stale = [params[:-len('.params')] + suffix for _, _, params in (mine[:-keep] if keep else mine)
             for suffix in ('.params', '.states', '.run.json')]
    for name in os.listdir(weights_dir):
        parsed = parse_checkpoint_name(name)
        if (parsed and parsed[0] == run_id and parsed[2] != 'params' and not os.path.exists(
                os.path.join(weights_dir, '%s_%d.params' % (parsed[0], parsed[1])))):
            stale.append(os.path.join(weights_dir, name))
    for path in stale:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def find_checkpoint(spec, weights_dir=WEIGHTS_DIR):
    """Resolve ``-c``: a .params path, or ``RUN[:STEPS]`` with RUN a run-id prefix in weights/.

    Returns (path, run_id, steps); without STEPS the newest checkpoint of the run is taken.
    No log file is needed, so published checkpoints work on their own.
    """
    if not spec:
        raise UserError('-c: empty; give RUN[:STEPS] or a .params file')
    if os.path.isdir(spec):
        raise UserError('-c %s: is a directory; give RUN[:STEPS] or a .params file' % spec)
    if os.path.isfile(spec) or spec.endswith('.params'):
        if not os.path.isfile(spec):
            raise UserError('checkpoint %s: no such file' % spec)
        parsed = parse_checkpoint_name(spec)
        if parsed and parsed[2] == 'params':
            return spec, parsed[0], parsed[1]
        return spec, None, 0
    prefix, _, steps = spec.partition(':')
    if steps and not steps.isdigit():
        raise UserError('-c %s: STEPS after the colon must be a number' % spec)
    everything = list_checkpoints(weights_dir)
    candidates = [c for c in everything if c[0].startswith(prefix)]
    if any(c[0] == prefix for c in candidates):   # an exact run id wins over longer ones
        candidates = [c for c in candidates if c[0] == prefix]
    runs = sorted({c[0] for c in candidates})
    if not runs:
        known = sorted({c[0] for c in everything})
        entry = published.lookup(spec)
        hint = ('; it is %s: add --download to fetch %s' % (published.describe(entry), entry.file)
                if entry else '')
        raise UserError('-c %s: no checkpoint %s*_STEPS.params in %s (runs there: %s)%s'
                        % (spec, prefix, weights_dir, ', '.join(known) or 'none', hint))
    if len(runs) > 1:
        raise UserError('-c %s: ambiguous, matches runs %s; give more of the run id'
                        % (spec, ', '.join(runs)))
    if steps:
        chosen = [c for c in candidates if c[1] == int(steps)]
        if not chosen:
            raise UserError('-c %s: run %s has no checkpoint at %s steps (it has: %s)'
                            % (spec, runs[0], steps, ', '.join(str(c[1]) for c in candidates)))
        candidates = chosen
    run_id, found_steps, path = candidates[-1]
    return path, run_id, found_steps


def find_or_download(spec, network_class=None, weights_dir=WEIGHTS_DIR, config_source=None,
                     training=False, progress=True):
    """find_checkpoint for ``--download``: a published checkpoint of the original that ``-c``
    names and ``weights_dir`` lacks is downloaded first (after checking that it fits
    ``network_class``, the config's network; see published.check_network for ``training``)."""
    try:
        return find_checkpoint(spec, weights_dir)
    except UserError:
        entry = published.lookup(spec)
        if entry is None or os.path.exists(os.path.join(weights_dir, entry.file)):
            raise
    if network_class is not None:
        published.check_network(entry, network_class, config_source, training)
    path = published.download(entry, weights_dir, progress)
    print('%s: downloaded, git blob id %s verified' % (path, entry.blob_id), flush=True)
    return find_checkpoint(spec, weights_dir)


# --- how a run starts -------------------------------------------------------------------------

@dataclass(frozen=True)
class RunStart:
    """How a training run starts: under which run id, at which step, from which checkpoint."""
    run_id: Optional[str]          # the run continued; None: a new run id is made
    steps: int                     # the step count the run starts at
    load_states: bool              # restore the optimizer state saved with the checkpoint
    branched_from: Optional[str]   # a new run continuing this checkpoint's history


def plan_start(path, run_id, steps, newest_of_run, clear_steps=False, head_only=False):
    """Resume or new run, for ``-c`` resolved to (path, run_id, steps).

    ``newest_of_run``: the path of the newest checkpoint of ``run_id`` in weights/ (or None).
    Only a resume from that newest checkpoint continues the run: resuming from an older one
    would save over (and prune) the run's later checkpoints, so it starts a new run id that
    keeps the step count and records where it branched from. ``--clear_steps`` and a
    MaskFlownet-S head for MaskFlownet start a new run at step 0 from the weights alone.
    """
    if path is None or clear_steps or head_only:
        return RunStart(None, 0, False, None)
    if run_id is not None and newest_of_run is not None and same_file(path, newest_of_run):
        return RunStart(run_id, steps, True, None)
    return RunStart(None, steps, True, path)


def own_run(run_id, weights_dir=WEIGHTS_DIR):
    """The lock that makes this process the only writer of run ``run_id``: ``RUN.lock`` in
    ``weights_dir``, held while the run trains (a ``with`` block). A second process that would
    write the same run is refused with the owner's pid; a lock a dead process left is taken
    over (common.files.OwnerLock)."""
    return OwnerLock(os.path.join(weights_dir, '%s.lock' % run_id), 'run %s' % run_id)


# --- the run record launch.py reads ---------------------------------------------------------

def record_run(run_id, weights_dir, started_from):
    """Tell launch.py, through the file it names in MASKFLOWNET_RUN_RECORD, which run this is,
    so that it can name the newest checkpoint when the job fails."""
    path = os.environ.get(RUN_RECORD_ENV)
    if path:
        with atomic_output(path) as tmp, open(tmp, 'w') as f:
            json.dump({'run_id': run_id, 'weights_dir': os.path.abspath(weights_dir),
                       'started_from': started_from and os.path.abspath(started_from)}, f)


def describe_newest(record_path):
    """What launch.py says of the job's newest checkpoint, from the record worker 0 wrote:
    'weights/RUN_STEPS.params (resume with -c RUN)', or a note why there is none."""
    try:
        with open(record_path) as f:
            record = json.load(f)
    except (OSError, ValueError):
        return 'unknown (worker 0 started no run on this machine)'
    newest = newest_checkpoint(record['run_id'], record['weights_dir'])
    if newest:
        return '%s (resume with -c %s)' % (os.path.relpath(newest), record['run_id'])
    if record['started_from']:
        return '%s, which the run started from' % os.path.relpath(record['started_from'])
    return 'none (run %s saved none)' % record['run_id']
