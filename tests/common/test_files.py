"""common/files.py: outputs moved into place together (all or none), and the clean-up of the
temporaries that killed processes left."""
import os
import pathlib
import signal
import subprocess
import sys

import cv2
import numpy as np
import pytest

from common import files
from common.errors import UserError
from common.files import OwnerLock
from reader import flowio
from tests.helpers import REPO, assert_one_line_error


# ---------------------------------------------------------------- outputs written together

def _fail_on(target, error):
    """An os.replace that fails as `error` ('io' or 'interrupt') when moving onto `target`."""
    replace = os.replace

    def replace_or_fail(src, dst):
        if os.fspath(dst) == os.fspath(target):
            if error == 'io':
                raise OSError(5, 'Input/output error', src, None, dst)  # as os.replace does
            raise KeyboardInterrupt
        replace(src, dst)
    return replace_or_fail


@pytest.mark.parametrize('error', ['io', 'interrupt'])
@pytest.mark.parametrize('flow_existed', [True, False])
def test_a_failed_second_move_puts_back_the_first_output(tmp_path, monkeypatch, error, flow_existed):
    flow_out, mask_out = tmp_path / 'f.flo', tmp_path / 'm.png'
    if flow_existed:
        flow_out.write_bytes(b'previous flow')
    mask_out.write_bytes(b'previous mask')
    monkeypatch.setattr(os, 'replace', _fail_on(mask_out, error))
    with pytest.raises(UserError if error == 'io' else KeyboardInterrupt) as excinfo:
        with files.atomic_outputs(flow_out, mask_out) as (flow_tmp, mask_tmp):
            flowio.write_flow(flow_tmp, np.zeros((2, 2, 2)))
            flowio.write_image(mask_tmp, np.zeros((2, 2), np.uint8))
    if error == 'io':
        assert_one_line_error(excinfo, mask_out)
        assert 'Input/output error' in str(excinfo.value)
    assert mask_out.read_bytes() == b'previous mask'
    if flow_existed:
        assert flow_out.read_bytes() == b'previous flow'
    assert sorted(os.listdir(tmp_path)) == sorted(['f.flo'] * flow_existed + ['m.png'])


def test_outputs_written_together_name_the_failing_output(tmp_path, monkeypatch):
    monkeypatch.setattr(cv2, 'imwrite', lambda tmp, image: False)
    flow_out, mask_out = tmp_path / 'f.npy', tmp_path / 'm.png'
    with pytest.raises(UserError, match='OpenCV could not write') as excinfo:
        with files.atomic_outputs(flow_out, mask_out) as (flow_tmp, mask_tmp):
            flowio.write_flow(flow_tmp, np.zeros((2, 2, 2)))
            flowio.write_image(mask_tmp, np.zeros((2, 2), np.uint8))
    assert_one_line_error(excinfo, mask_out)
    assert '.tmp-' not in str(excinfo.value)
    assert os.listdir(tmp_path) == []
    with files.atomic_outputs(flow_out, mask_out) as (flow_tmp, mask_tmp):
        assert flow_tmp.endswith('.npy') and mask_tmp.endswith('.png')  # kinds go by extension
        flowio.write_flow(flow_tmp, np.ones((2, 2, 2)))
        pathlib.Path(mask_tmp).write_bytes(b'any writer')  # any writer may fill one
    assert sorted(os.listdir(tmp_path)) == ['f.npy', 'm.png']
    assert (np.load(flow_out) == 1).all() and mask_out.read_bytes() == b'any writer'


# ---------------------------------------------------------------- leftovers of killed runs

def _dead_pid():
    process = subprocess.Popen([sys.executable, '-c', 'pass'])
    process.wait()
    return process.pid


def test_remove_stale_temporaries_only_removes_those_of_dead_processes(tmp_path):
    dead, alive = _dead_pid(), os.getpid()
    stale = ['flow.flo.tmp-%d' % dead, 'flow.png.tmp-%d.png' % dead, 'out.MP4.tmp-%d.mp4' % dead,
             'flow.flo.tmp-%d.old' % dead, '8caNov12-1532_5000.params.tmp-%d' % dead]
    kept = ['flow.flo', 'flow.flo.tmp-%d' % alive, 'other.png.tmp-%d.png' % os.getppid(),
            'notes.tmp-%d.txt' % dead, 'flow.png.tmp-%d.txt' % dead, 'flow.flo.tmp-abc',
            'flow.flo.tmp-%dx' % dead]
    for name in stale + kept:
        (tmp_path / name).write_bytes(b'x')
    (tmp_path / ('folder.flo.tmp-%d' % dead)).mkdir()
    removed = files.remove_stale_temporaries(tmp_path)
    assert sorted(removed) == sorted(str(tmp_path / name) for name in stale)
    assert sorted(os.listdir(tmp_path)) == sorted(kept + ['folder.flo.tmp-%d' % dead])
    assert files.remove_stale_temporaries(tmp_path / 'missing') == []


def test_the_temporaries_of_named_outputs_are_the_only_ones_removed_from_a_users_folder(tmp_path):
    """Prediction folders hold the user's files: a refused run removed their notes.txt.tmp-N
    and an earlier output named run.flo.tmp-N.flo (also the temporaries of other outputs)."""
    dead = _dead_pid()
    ours = ['a.flo.tmp-%d' % dead, 'a.flo.tmp-%d.old' % dead, 'a_occ.png.tmp-%d.png' % dead]
    theirs = ['notes.txt.tmp-%d' % dead, 'run.flo.tmp-%d.flo' % dead, 'b.flo.tmp-%d' % dead]
    for name in ours + theirs:
        (tmp_path / name).write_bytes(b'x')
    outputs = [tmp_path / 'a.flo', tmp_path / 'a_occ.png', tmp_path / 'sub' / 'c.flo']
    removed = files.remove_stale_temporaries_of(outputs)
    assert sorted(removed) == sorted(str(tmp_path / name) for name in ours)
    assert sorted(os.listdir(tmp_path)) == sorted(theirs)


# --- OwnerLock ------------------------------------------------------------------------------

HOLD = '''
import sys, time
sys.path.insert(0, %r)
from common.files import OwnerLock
OwnerLock(sys.argv[1], 'run X').acquire()
print('held', flush=True)
time.sleep(60)
''' % str(REPO)


def test_a_lock_is_refused_while_its_owner_lives_and_taken_over_once_it_is_killed(tmp_path):
    path = tmp_path / 'run.lock'
    owner = subprocess.Popen([sys.executable, '-c', HOLD, str(path)], stdout=subprocess.PIPE,
                             text=True)
    try:
        assert owner.stdout.readline() == 'held\n'
        with pytest.raises(UserError) as refused:
            OwnerLock(path, 'run abcDec07-1200').acquire()
        assert str(refused.value) == ('run abcDec07-1200 is in use by another process (pid %d, '
                                      'lock file %s); wait for it to end or stop it'
                                      % (owner.pid, path))
    finally:
        owner.send_signal(signal.SIGKILL)   # like a power cut: no clean-up of its lock file
        owner.wait(timeout=30)
    assert path.exists()
    with OwnerLock(path, 'run abcDec07-1200'):
        assert path.read_text().split()[0] == str(os.getpid())
        with pytest.raises(UserError, match='pid %d' % os.getpid()):
            OwnerLock(path, 'run abcDec07-1200').acquire()   # a second holder, same process
    assert not path.exists()
