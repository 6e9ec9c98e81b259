"""Safe file output: atomic writes synced to disk, outputs moved into place together, checks of
output paths before any work, and the clean-up of temporaries that killed processes left.

A temporary is named ``<output>.tmp-<PID><suffix>``: the PID tells whether its writer still
lives (see remove_stale_temporaries); the suffix is '', the output's extension (OpenCV and
ffmpeg pick the format from it) or '.old' (a backup, see _keep_previous).
"""
import contextlib
import errno
import os
import re
import shutil

from common.errors import UserError


def _ext(path):
    return os.path.splitext(os.fspath(path))[1].lower()

_TEMPORARY_NAME = re.compile(r'.+(?P<ext>\.[^.]+)\.tmp-(?P<pid>[0-9]+)(?P<suffix>\.[^.]+)?')
_staged = {}  # temporary path -> the output it stands for, while atomic_outputs has it open


def _temporary_path(path, suffix):
    return f'{path}.tmp-{os.getpid()}{suffix}'


def _fsync_file(path):
    """Flush the file at `path` to disk, whoever wrote it (numpy, cv2, MXNet, ffmpeg)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder):
    """Flush a folder's entries (a rename) to disk, where the system can."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # systems that cannot open a folder (Windows) sync their names themselves
        return
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise  # some file systems cannot sync a folder; anything else is a real failure
    finally:
        os.close(fd)


def _keep_previous(path):
    """A hard link to the file now at `path` to restore it from; None if there is none."""
    backup = _temporary_path(path, '.old')
    with contextlib.suppress(FileNotFoundError):
        os.remove(backup)
    try:
        os.link(path, backup, follow_symlinks=False)
    except FileNotFoundError:
        return None
    except OSError:  # a file system without hard links
        shutil.copy2(path, backup, follow_symlinks=False)
    return backup


def _move_into_place(moves):
    """os.replace each (tmp, path) in turn; if one fails, put back what the others replaced."""
    replaced = []  # (path, backup of what it held before, or None)
    try:
        for tmp, path in moves[:-1]:
            replaced.append((path, _keep_previous(path)))
            os.replace(tmp, path)
        os.replace(*moves[-1])  # the last move has nothing after it to fail: no backup needed
    except BaseException:
        for path, backup in reversed(replaced):
            with contextlib.suppress(OSError):
                if backup is None:
                    os.remove(path)
                else:
                    os.replace(backup, path)
        raise
    for _, backup in replaced:
        if backup is not None:
            with contextlib.suppress(OSError):
                os.remove(backup)


@contextlib.contextmanager
def _atomic(targets):
    """atomic_output and atomic_outputs: `targets` are (path, suffix) pairs."""
    paths = [os.fspath(path) for path, _ in targets]
    tmps = [_temporary_path(path, suffix) for path, (_, suffix) in zip(paths, targets)]
    try:
        _staged.update(zip(tmps, paths))
        for path in paths:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        yield tmps
        for tmp in tmps:
            _fsync_file(tmp)  # the data is on disk before its name is
        _move_into_place(list(zip(tmps, paths)))
        for folder in dict.fromkeys(os.path.dirname(os.path.abspath(p)) for p in paths):
            _fsync_folder(folder)
    except BaseException as e:
        for tmp in tmps:
            with contextlib.suppress(OSError):
                os.remove(tmp)
        if isinstance(e, OSError):
            raise UserError(f'{_failed_output(e, paths)}: cannot write ({e.strerror or e})') from e
        raise
    finally:
        for tmp in tmps:
            _staged.pop(tmp, None)


def _failed_output(error, paths):
    """The output an OSError is about: the one its file name (or its temporary's) names."""
    for name in (getattr(error, 'filename', None), getattr(error, 'filename2', None)):
        name = _staged.get(name, name)
        if name in paths:
            return name
    return paths[0]


@contextlib.contextmanager
def atomic_output(path, suffix=''):
    """Yield a temporary path beside `path`; move it onto `path` only if the body succeeds.

    The file is synced to disk before the rename and the folder after it, so neither a kill
    nor a power cut leaves a half-written `path`; OSErrors become a UserError naming `path`.
    Inside atomic_outputs, a path it yielded is written directly: that one moves it.
    """
    path = os.fspath(path)
    if path in _staged:
        try:
            yield path
        except OSError as e:
            raise UserError(f'{_staged[path]}: cannot write ({e.strerror or e})') from e
        return
    with _atomic([(path, suffix)]) as (tmp,):
        yield tmp


@contextlib.contextmanager
def atomic_outputs(*paths):
    """Yield one temporary path per output (same extension); all move into place or none.

    If a later move fails, the outputs moved before it get back what they held before the
    run (or are removed if they did not exist). The writers of this module write directly to
    the temporaries, e.g. ``with atomic_outputs(a, b) as (ta, tb): write_flow(ta, ..)``.
    """
    with _atomic([(path, _ext(path)) for path in paths]) as tmps:
        yield tmps


def remove_stale_temporaries(folder, only=None):
    """Remove the temporaries that dead (killed) processes left in `folder`; return their paths.

    Only files named like our temporaries (<output>.<ext>.tmp-<PID> with no suffix, .<ext>
    or .old) whose PID is no running process are removed: the files of a writer that is still
    alive, and every other file, are left alone. ``only``: a set of output names (file names
    in `folder`): only their temporaries are removed (in a folder that holds the user's files).
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:  # no folder (yet), or not readable: nothing of ours to clean
        return removed
    for entry in entries:
        pid = _temporary_pid(entry.name)
        if only is not None and (pid is None or _temporary_output(entry.name) not in only):
            continue
        if pid is not None and entry.is_file(follow_symlinks=False) and not _process_lives(pid):
            with contextlib.suppress(OSError):
                os.remove(entry.path)
                removed.append(entry.path)
    return removed


def remove_stale_temporaries_of(outputs):
    """Remove what killed processes left of these outputs' temporaries, and nothing else: in
    the folders of predicted flows, which may hold the user's own files."""
    by_folder = {}
    for path in map(os.fspath, outputs):
        by_folder.setdefault(os.path.dirname(os.path.abspath(path)), set()).add(
            os.path.basename(path))
    return [path for folder, names in sorted(by_folder.items())
            for path in remove_stale_temporaries(folder, only=names)]


def _temporary_output(name):
    """The output file name that the temporary ``name`` stands for."""
    return name[:_TEMPORARY_NAME.fullmatch(name).start('pid') - len('.tmp-')]


def _temporary_pid(name):
    """The writer's PID if `name` is one of our temporaries' names, else None."""
    match = _TEMPORARY_NAME.fullmatch(name)
    if match is None:
        return None
    suffix = match['suffix']
    if suffix is not None and suffix != '.old' and suffix.lower() != match['ext'].lower():
        return None
    return int(match['pid'])


def _process_lives(pid):
    if pid <= 0 or os.name == 'nt':  # no PID of ours; on Windows os.kill would end the process
        return True
    try:
        os.kill(pid, 0)  # signal 0 only asks whether the process exists
    except (ProcessLookupError, OverflowError):  # OverflowError: beyond any PID
        return False
    except OSError:  # PermissionError: another user's live process
        return True
    return True


def output_name(path):
    """The output `path` stands for: itself, or the output of a temporary it is."""
    return _staged.get(os.fspath(path), os.fspath(path))


def check_output_paths(outputs, inputs=()):
    """Raise UserError now, before any work, unless every output can be written safely.

    Each output must lie in a folder we may write (or may create), must not be a folder or a
    special file, must not be one of `inputs` (also under another spelling or through a link)
    and must differ from the other outputs.
    """
    sources = {_place_of(source): source for source in map(os.fspath, inputs)}
    seen = {}
    for path in map(os.fspath, outputs):   # one pass: folders of predictions hold thousands
        _check_writable(path)
        place = _place_of(path)
        if place in sources:
            raise UserError(f'{path}: is the input {sources[place]}; write the output elsewhere')
        if place in seen:
            raise UserError(f'{path}: is also the output {seen[place]}; give two different paths')
        seen[place] = path


def _place_of(path):
    """What ``same_file`` compares, as a key: an existing file's device and inode (also under
    another spelling, through a link or a hard link), else where the path leads."""
    try:
        info = os.stat(path)
        return 'file', info.st_dev, info.st_ino
    except OSError:   # not there (yet)
        return 'path', os.path.normcase(os.path.realpath(path))


def _check_writable(path):
    if os.path.isdir(path):
        raise UserError(f'{path}: is a directory')
    if os.path.exists(path) and not os.path.isfile(path):
        raise UserError(f'{path}: not a regular file')
    _check_folder_for(path, os.path.dirname(os.path.abspath(path)))


def _check_folder_for(path, folder):
    while not os.path.lexists(folder):  # atomic_output creates the missing folders
        folder = os.path.dirname(folder)
    if not os.path.isdir(folder):
        raise UserError(f'{path}: cannot write ({folder} is not a folder)')
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f'{path}: cannot write (the folder {folder} is not writable)')


def check_output_folder(folder):
    """Raise UserError unless files can be created in ``folder``: it is a writable folder, or
    missing below one (atomic_output creates it); nothing is written."""
    folder = os.fspath(folder)
    _check_folder_for(folder, os.path.abspath(folder))


def same_file(a, b):
    """Whether the two paths name one file (also under another spelling or through a link);
    for a path that does not exist (yet), whether the two lead to the same place."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one does not exist (yet): compare where the two names lead
        return os.path.realpath(a) == os.path.realpath(b)


def prove_writable(folder):
    """Create ``folder`` (and its parents) if missing and prove that files can be written
    there, by writing and removing a small file; UserError naming the folder otherwise."""
    folder = os.fspath(folder)
    try:
        os.makedirs(folder, exist_ok=True)
        # named like a temporary, so that remove_stale_temporaries takes one a kill left
        probe = _temporary_path(os.path.join(folder, '.write-test.probe'), '')
        with open(probe, 'wb') as f:
            f.write(b'.')
        os.remove(probe)
    except OSError as e:
        raise UserError(f'{folder}: cannot write there ({e.strerror or e})') from None


class OwnerLock:
    """An exclusive lock on ``path`` held by this process while it lives (``fcntl.flock``): a
    second process is refused with one line naming ``what`` and the owner's pid. The kernel
    drops the lock when its process dies however it dies (kill -9, power cut), so a lock file a
    dead process left behind is taken over without manual clean-up. Released by ``release``
    (or leaving the ``with`` block), which also removes the file."""

    def __init__(self, path, what):
        self.path = os.fspath(path)
        self.what = what
        self._fd = None

    def acquire(self):
        import fcntl   # here: POSIX only
        try:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        except OSError as e:
            raise UserError(f'{self.path}: cannot make its folder ({e.strerror or e})') from None
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as e:
                raise UserError(f'{self.path}: cannot open the lock of {self.what} '
                                f'({e.strerror or e}); move it away if nothing uses it') from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = os.read(fd, 200).decode(errors='replace').split()
                os.close(fd)
                raise UserError('%s is in use by another process (pid %s, lock file %s); wait '
                                'for it to end or stop it' % (self.what, owner[0] if owner
                                                              else 'unknown', self.path)) from None
            except OSError:
                os.close(fd)
                raise
            # The file may have been removed (a release) between our open and our lock: then
            # the lock is on a file nobody else sees; take the one at the path instead.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, b'%d %s\n' % (os.getpid(), os.uname().nodename.encode()))
        self._fd = fd
        return self

    def release(self):
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.remove(self.path)   # while still holding it: see acquire
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
