"""Reading and writing ``.params`` checkpoints, with a check against the network first.

A checkpoint is what Gluon's ``save_parameters`` writes: an ``nd.save`` dict from structural
parameter names (``conv1a.0.weight``, ``MaskFlownet_S.deform5.bias``) to float32 arrays. The
original MaskFlownet checkpoints are in this format, so these names and shapes are a contract.
"""
import os

import numpy as np
import mxnet as mx

from common.errors import UserError
from common.files import atomic_output

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


class CheckpointMismatch(UserError):
    """A checkpoint whose names or shapes do not fit the network; ``guess`` is the network
    that saved it (or None), ``problem`` the message without the hint, so that a caller who
    knows the file better (a published checkpoint) can give a better one."""

    def __init__(self, message, path, guess, problem, network_name):
        super().__init__(message)
        self.path, self.guess, self.problem = path, guess, problem
        self.network_name = network_name


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
    hint = ''
    if guess and guess != network_name:
        hint = ' (it looks like a %s checkpoint: use a %s config)' % (guess, guess)
    raise CheckpointMismatch(message + hint, path, guess, message, network_name)


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
