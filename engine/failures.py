"""Failures of MXNet itself, turned into the one-line form: running out of memory while
training, validating or predicting becomes a ``UserError`` that says what was being done and
what to reduce.

MXNet runs its operators asynchronously: a failed allocation surfaces where the program next
waits for a result (``asnumpy``), so each guarded phase is one that waits before it ends.
"""
import contextlib
import sys

from common.errors import UserError

# What MXNet 1.9 says when an allocation fails: its own storage ("Failed to allocate CPU
# Memory"), C++'s bad_alloc, and CUDA's.
OUT_OF_MEMORY = ('Failed to allocate', 'bad_alloc', 'out of memory', 'Cannot allocate memory',
                 'cudaMalloc')
# oneDNN's primitives allocate their own buffers and say only this when that fails (seen here
# under a memory limit); it is also their answer to other failures, so the line says both.
ONEDNN_FAILURE = ('could not execute a primitive', 'could not create a primitive')
# MXNet 1.9 (without its large-tensor build) refuses a tensor of 2^31 elements or more.
TOO_LARGE = 'larger than 2^31 elements'


class OutOfMemory(UserError):
    """MXNet could not allocate memory for the phase named in the message."""


def is_out_of_memory(error):
    text = str(error)
    return isinstance(error, MemoryError) or any(marker in text for marker in OUT_OF_MEMORY)


def onednn_failed(error):
    return any(marker in str(error) for marker in ONEDNN_FAILURE)


@contextlib.contextmanager
def memory_guard(doing, reduce):
    """Turn an allocation failure inside the block into ``OutOfMemory``: 'out of memory while
    {doing}; reduce {reduce}'. Other MXNet errors pass unchanged."""
    # MXNet's errors where MXNet runs; the onnxruntime backend, which never loads it, raises
    # MemoryError for its own (onnx_backend.OnnxPipeline.run).
    mx = sys.modules.get('mxnet')
    errors = (MemoryError, mx.base.MXNetError) if mx else (MemoryError,)
    try:
        yield
    except errors as error:
        if is_out_of_memory(error):
            if mx:
                _drain(mx)
            raise OutOfMemory('out of memory while %s; reduce %s' % (doing, reduce)) from None
        if TOO_LARGE in str(error):
            if mx:
                _drain(mx)
            raise OutOfMemory('too large for MXNet while %s (a tensor of 2^31 elements or '
                              'more); reduce %s' % (doing, reduce)) from None
        if onednn_failed(error):
            if mx:
                _drain(mx)
            raise OutOfMemory("oneDNN could not run an operation while %s, which is how it reports "
                              "running out of memory; reduce %s (if that does not help, it is "
                              "another oneDNN failure: report it)" % (doing, reduce)) from None
        raise


def _drain(mx):
    """Wait for MXNet's other operations of the failed phase, whose own failures it would
    otherwise raise again at the process's exit (a traceback after our one line)."""
    for _ in range(3):
        try:
            mx.nd.waitall()
            return
        except mx.base.MXNetError:
            continue
