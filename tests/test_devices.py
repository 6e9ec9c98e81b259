"""The process set-up of the command-line tools (common/devices.py)."""
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Allocates 64 MB in a fresh thread, writes it and frees it, twice (MXNet's arrays come and go
# like this, from its worker threads); prints the page faults of the second round.
REUSE = '''
import ctypes, resource, sys, threading
sys.path.insert(0, %r)
from common.devices import keep_freed_memory
took = keep_freed_memory() if sys.argv[1] == 'keep' else None
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
size = 64 << 20
def round_trip():
    block = libc.malloc(size)
    ctypes.memset(block, 1, size)
    libc.free(block)
def in_a_thread():
    thread = threading.Thread(target=round_trip)
    thread.start()
    thread.join()
in_a_thread()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
in_a_thread()
print(took, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
''' % str(REPO)


def faults_of_the_second_round(mode):
    out = subprocess.run([sys.executable, '-c', REUSE, mode], capture_output=True, text=True,
                         check=True, timeout=60).stdout.split()
    return out[0], int(out[1])


def test_keep_freed_memory_reuses_a_freed_block_without_new_page_faults():
    _, plain = faults_of_the_second_round('plain')
    if plain < 8000:   # 64 MB is 16384 pages of 4 KB
        pytest.skip('this C library does not hand large freed blocks back to the system')
    took, kept = faults_of_the_second_round('keep')
    assert took == 'True'
    assert kept < 200, (kept, plain)


# Each command-line tool, given an input that does not exist: records whether MXNet was
# loaded when the process set-up ran (it must not be), then exits with its one-line error.
CLI_SET_UP = '''
import sys
sys.path.insert(0, %r)
from common import devices
calls = []
devices.keep_freed_memory = lambda: calls.append('mxnet' in sys.modules)
import {module}
try:
    status = {module}.main({argv!r})
except SystemExit as exit:
    status = exit.code
print(calls, status)
''' % str(REPO)


@pytest.mark.parametrize('module, argv', [
    ('main', ['no_such_config.yaml', '--valid']),
    ('predict_new_data', ['out.flo', 'MaskFlownet_S', '--image_1', 'missing_1.png',
                          '--image_2', 'missing_2.png', '-c', 'missing.params']),
])
def test_the_command_line_tools_set_up_the_process_before_mxnet_loads(module, argv, tmp_path):
    code = CLI_SET_UP.format(module=module, argv=argv)
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120)
    assert out.stdout.split()[-2:] == ['[False]', '2'], (out.stdout, out.stderr[-2000:])
