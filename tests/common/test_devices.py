"""common/devices.py: how freed memory is kept (the command lines' process set-up; that they
run it before MXNet loads is checked in tests/cli/)."""
import subprocess
import sys

import pytest

from tests.helpers import REPO

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


@pytest.mark.slow
def test_keep_freed_memory_reuses_a_freed_block_without_new_page_faults():
    _, plain = faults_of_the_second_round('plain')
    if plain < 8000:   # 64 MB is 16384 pages of 4 KB
        pytest.skip('this C library does not hand large freed blocks back to the system')
    took, kept = faults_of_the_second_round('keep')
    assert took == 'True'
    assert kept < 200, (kept, plain)
