"""MXNet running out of memory becomes one line that says what was being done and what to
reduce (engine/failures.py), also in a real process whose memory is limited."""
import subprocess
import sys

import mxnet as mx
import pytest

from common.errors import UserError
from engine.failures import OutOfMemory, memory_guard
from tests.helpers import REPO

PAIR = [REPO / 'tests/data/datasets/sintel/training/clean/alley_1/frame_0002.png',
        REPO / 'tests/data/datasets/sintel/training/clean/alley_1/frame_0003.png']


@pytest.mark.parametrize('error', [
    mx.base.MXNetError('Traceback (most recent call last):\n  File "../src/storage/./'
                       'cpu_device_storage.h", line 74\nMXNetError: Failed to allocate CPU Memory'),
    MemoryError(),
])
def test_allocation_failures_become_one_line(error):
    with pytest.raises(OutOfMemory) as raised:
        with memory_guard('predicting at 448x1024', '--resize'):
            raise error
    assert str(raised.value) == 'out of memory while predicting at 448x1024; reduce --resize'
    assert isinstance(raised.value, UserError)


def test_a_onednn_failure_says_it_may_be_memory_or_not():
    with pytest.raises(OutOfMemory) as raised:
        with memory_guard('predicting at 448x1024', '--resize'):
            raise mx.base.MXNetError('MXNetError: could not execute a primitive')
    assert str(raised.value) == (
        'oneDNN could not run an operation while predicting at 448x1024, which is how it reports '
        'running out of memory; reduce --resize (if that does not help, it is another oneDNN '
        'failure: report it)')


def test_a_tensor_too_large_for_mxnet_says_what_to_reduce():
    """A --resize the options allow made a batch tensor of 2^31 elements: MXNet's shape check
    went through as a traceback."""
    with pytest.raises(OutOfMemory) as raised:
        with memory_guard('predicting 2 pairs at network size 32704x32704', '--batch or --resize'):
            mx.nd.zeros((2 ** 16, 2 ** 15 + 1)).wait_to_read()
    assert str(raised.value) == (
        'too large for MXNet while predicting 2 pairs at network size 32704x32704 (a tensor of '
        '2^31 elements or more); reduce --batch or --resize')


def test_other_mxnet_errors_pass_unchanged():
    with pytest.raises(mx.base.MXNetError, match='Check failed: shape'):
        with memory_guard('predicting', '--resize'):
            raise mx.base.MXNetError('Check failed: shape mismatch')


LIMITED = '''
import resource, sys
limit = 3 * 2 ** 30   # address space: MXNet's allocations fail long before the machine's
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
sys.path.insert(0, %r)
import predict_new_data
sys.exit(predict_new_data.main(sys.argv[1:]))
''' % str(REPO)


@pytest.mark.slow
def test_a_prediction_too_large_for_the_memory_is_one_line_and_writes_nothing(tmp_path):
    checkpoint = tmp_path / 'untrained_0.params'
    subprocess.run([sys.executable, '-m', 'network.init_checkpoint', 'MaskFlownet_S.yaml',
                    str(checkpoint)], cwd=REPO, check=True, capture_output=True, timeout=120)
    out = tmp_path / 'flow.flo'
    done = subprocess.run([sys.executable, '-c', LIMITED, str(out), 'MaskFlownet_S.yaml',
                           '--image_1', str(PAIR[0]), '--image_2', str(PAIR[1]), '-c',
                           str(checkpoint), '--resize', '2048,4096'],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr == ('error: out of memory while predicting the flow at network size '
                           '4096x2048; reduce --resize\n')
    assert list(tmp_path.iterdir()) == [checkpoint]
