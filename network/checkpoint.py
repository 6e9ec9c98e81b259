"""Reading and writing ``.params`` checkpoints, with a check against the network first.

A checkpoint is what Gluon's ``save_parameters`` writes: an ``nd.save`` dict from structural
parameter names (``conv1a.0.weight``, ``MaskFlownet_S.deform5.bias``) to float32 arrays. The
original MaskFlownet checkpoints are in this format, so these names and shapes are a contract.
"""
import os
import re

import numpy as np
import mxnet as mx

from common.files import atomic_output

from common.errors import UserError

from . import published

HEAD_PREFIX = 'MaskFlownet_S.'
_SHOWN = 3   # mismatches listed per kind in an error message


def parameters_by_name(block):
    """The block's parameters under the names its checkpoint uses."""
    return block._collect_params_with_prefix()


def expected_shapes(block):
    return {name: tuple(p.shape) for name, p in parameters_by_name(block).items()}


def read_checkpoint(path):
    """Load a checkpoint file into {name: NDArray} on the CPU, or raise UserError."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UserError('checkpoint %s: no such file' % path)
    try:
        arrays = mx.nd.load(path)
    except mx.base.MXNetError:
        raise UserError('checkpoint %s: not an MXNet parameter file (could not be read by '
                        'mx.nd.load)' % path) from None
    if not isinstance(arrays, dict) or not arrays:
        raise UserError('checkpoint %s: holds no named parameters (is it a .states or another '
                        'nd.save file?)' % path)
    return arrays


def guess_network(names):
    """'MaskFlownet', 'MaskFlownet_S' or None: which network saved these parameter names."""
    if any(n.startswith(HEAD_PREFIX) for n in names):
        return 'MaskFlownet'
    if any(n.startswith('pred_mask') for n in names):
        return 'MaskFlownet_S'
    return None


def check_compatible(arrays, block, path, network_name):
    """Raise one UserError listing the first mismatches if ``arrays`` do not fit ``block``."""
    expected = expected_shapes(block)
    missing = sorted(set(expected) - set(arrays))
    extra = sorted(set(arrays) - set(expected))
    wrong = ['%s %s (network needs %s)' % (n, tuple(arrays[n].shape), expected[n])
             for n in sorted(set(expected) & set(arrays)) if tuple(arrays[n].shape) != expected[n]]
    if not (missing or extra or wrong):
        return
    problems = []
    for label, items in (('missing', missing), ('unexpected', extra), ('wrong shape', wrong)):
        if items:
            more = ', ...' if len(items) > _SHOWN else ''
            problems.append('%d %s: %s%s' % (len(items), label, ', '.join(items[:_SHOWN]), more))
    message = 'checkpoint %s does not fit %s: %s' % (path, network_name, '; '.join(problems))
    guess = guess_network(arrays)
    entry = published.by_file(path)
    if entry is not None and guess == entry.network_class != network_name:
        message += ' (it is %s: use %s)' % (published.describe(entry), entry.config)
    elif guess and guess != network_name:
        message += ' (it looks like a %s checkpoint: use a %s config)' % (guess, guess)
    raise UserError(message)


def _non_finite_message(named_arrays):
    """'' if every array is finite, else a phrase naming the first arrays that are not."""
    bad = [name for name, array in named_arrays
           if not np.isfinite(array.asnumpy() if hasattr(array, 'asnumpy') else array).all()]
    if not bad:
        return ''
    return '%d parameter(s) hold NaN or infinite values: %s%s' % (
        len(bad), ', '.join(bad[:_SHOWN]), ', ...' if len(bad) > _SHOWN else '')


def check_finite(block, path):
    """Raise UserError, before anything is written to ``path``, if a parameter is not finite."""
    problem = _non_finite_message((name, p.data()) for name, p in parameters_by_name(block).items())
    if problem:
        raise UserError('checkpoint %s not written: %s' % (path, problem))


def load_checkpoint(block, path, network_name=None, arrays=None):
    """Check ``path`` against ``block`` and copy its arrays in; the block must be initialized.

    ``arrays``: the file's contents when the caller has read them already. A checkpoint with
    non-finite values is refused: nothing useful can be computed from it.
    """
    network_name = network_name or type(block).__name__
    if arrays is None:
        arrays = read_checkpoint(path)
    check_compatible(arrays, block, path, network_name)
    problem = _non_finite_message(sorted(arrays.items()))
    if problem:
        raise UserError('checkpoint %s: %s (a diverged run?)' % (path, problem))
    for name, param in parameters_by_name(block).items():
        param.set_data(arrays[name].astype(param.dtype, copy=False))


def save_checkpoint(block, path):
    """Write the block's finite parameters to ``path`` atomically (never a half-written file)."""
    check_finite(block, path)
    try:
        with atomic_output(path) as tmp:
            block.save_parameters(tmp)
    except mx.base.MXNetError as error:   # MXNet's own writer: disk full, I/O error
        raise UserError('%s: cannot write (%s)' % (path, mxnet_error_reason(error))) from None


def mxnet_error_reason(error):
    """The reason at the end of an MXNet error's C++ trace ('FileStream.Write incomplete')."""
    lines = str(error).strip().splitlines() or ['MXNet error']
    reason = lines[-1].rpartition(': ')[2].strip() or lines[-1]
    if 'Write incomplete' in reason:
        reason += ': disk full?'
    return reason


# Relative to the working directory, as in the original: run the tools from the repo root.
WEIGHTS_DIR = 'weights'
_CHECKPOINT_NAME = re.compile(r'^(?P<run>.+)_(?P<steps>\d+)\.params$')


def list_checkpoints(weights_dir=WEIGHTS_DIR):
    """[(run_id, steps, path)] for every ``{run_id}_{steps}.params`` in ``weights_dir``, sorted."""
    if not os.path.isdir(weights_dir):
        return []
    found = []
    for name in sorted(os.listdir(weights_dir)):
        match = _CHECKPOINT_NAME.match(name)
        if match:
            found.append((match['run'], int(match['steps']), os.path.join(weights_dir, name)))
    return sorted(found, key=lambda t: (t[0], t[1]))


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
        match = _CHECKPOINT_NAME.match(os.path.basename(spec))
        return spec, (match['run'] if match else None), (int(match['steps']) if match else 0)
    prefix, _, steps = spec.partition(':')
    if steps and not steps.isdigit():
        raise UserError('-c %s: STEPS after the colon must be a number' % spec)
    candidates = [c for c in list_checkpoints(weights_dir) if c[0].startswith(prefix)]
    if any(c[0] == prefix for c in candidates):   # an exact run id wins over longer ones
        candidates = [c for c in candidates if c[0] == prefix]
    runs = sorted({c[0] for c in candidates})
    if not runs:
        known = sorted({c[0] for c in list_checkpoints(weights_dir)})
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
