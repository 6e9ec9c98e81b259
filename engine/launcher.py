"""The body of ``launch.py``: one training job on several processes or machines with MXNet's
parameter-server kvstore, started by the ``dmlc_tracker`` package that ships with the mxnet
wheel, with what a long run needs on top of it:

- a Python 3.11 shim (``Thread.isAlive`` is gone) and a scheduler address that is the one given
  (``--host``, 127.0.0.1 for the local launcher), not one the tracker guesses;
- a watch on every process: ps-lite waits forever for a dead worker, so when any process fails,
  or the job does not end within ``--exit_timeout`` s after a worker finished, the whole job is
  stopped (process groups, SIGTERM then SIGKILL) with one line naming the process and the
  newest checkpoint to resume from;
- a port already in use is refused before anything starts.
"""
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from common.errors import UserError

from . import main_options
from .runs import RUN_RECORD_ENV, describe_newest

LAUNCHERS = ('local', 'ssh', 'mpi', 'slurm', 'sge')
POLL_S = 0.2
STOP_GRACE_S = 5      # SIGTERM, then SIGKILL after this long


# --- dmlc_tracker, as shipped, made to run here --------------------------------------------

def import_tracker():
    """The dmlc_tracker modules, importable on Python 3.11."""
    if not hasattr(threading.Thread, 'isAlive'):
        threading.Thread.isAlive = threading.Thread.is_alive   # removed in Python 3.9
    from dmlc_tracker import local, mpi, opts, sge, slurm, ssh, tracker
    return dict(tracker=tracker, opts=opts, local=local, ssh=ssh, mpi=mpi, slurm=slurm, sge=sge)


class Process:
    """One command dmlc_tracker started: the scheduler, a worker, a server, or an ssh/srun/mpirun
    that runs them elsewhere."""

    def __init__(self, label, popen):
        self.label = label
        self.popen = popen

    def describe(self):
        code = self.popen.returncode
        if code is not None and code < 0:
            how = 'was killed by %s' % signal.Signals(-code).name
        else:
            how = 'exited with status %s' % code
        return '%s (pid %d) %s' % (self.label, self.popen.pid, how)


class Supervisor:
    """Starts the commands dmlc_tracker hands to ``subprocess``, each in a process group of its
    own, and keeps them so that the whole job can be watched and stopped.

    Installed as the ``subprocess`` of the dmlc_tracker modules: their threads call ``call`` or
    ``check_call`` and wait. Exit statuses are acted on here, not there (dmlc_tracker would
    retry a worker or raise in its thread), so both return 0.
    """

    def __init__(self):
        self.processes = []
        self._lock = threading.Lock()
        self._stopping = False
        self._counts = {}

    # the part of the subprocess module dmlc_tracker uses
    def __getattr__(self, name):
        return getattr(subprocess, name)

    def call(self, command, shell=False, env=None, **options):
        with self._lock:
            if self._stopping:
                return 0
            popen = subprocess.Popen(command, shell=shell, env=env, start_new_session=True,
                                     **options)
            process = Process(self._label(command, env), popen)
            self.processes.append(process)
        popen.wait()
        return 0

    check_call = call

    def _label(self, command, env):
        text = command if isinstance(command, str) else ' '.join(command)
        role = (env or {}).get('DMLC_ROLE') or next(iter(re.findall(r'DMLC_ROLE=(\w+)', text)), None)
        if role is None:
            return 'command %r' % text.split()[0]
        if role == 'scheduler':
            return role
        if env and 'DMLC_TASK_ID' in env:
            return '%s task %s' % (role, env['DMLC_TASK_ID'])
        number = self._counts[role] = self._counts.get(role, -1) + 1
        host = re.findall(r'DMLC_NODE_HOST=(\S+?);', text)
        return '%s %d%s' % (role, number, ' on %s' % host[0] if host else '')

    def snapshot(self):
        with self._lock:
            return list(self.processes)

    def stop_all(self):
        """SIGTERM every process group still running, SIGKILL what is left after a grace."""
        with self._lock:
            self._stopping = True
            processes = list(self.processes)
        for signum, wait in ((signal.SIGTERM, STOP_GRACE_S), (signal.SIGKILL, STOP_GRACE_S)):
            for process in processes:
                try:
                    os.killpg(process.popen.pid, signum)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + wait
            for process in processes:
                try:
                    process.popen.wait(max(0.01, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
            if all(p.popen.poll() is not None and not _group_alive(p.popen.pid) for p in processes):
                return


def _group_alive(pgid):
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


class ReusingSockets:
    """The socket module as dmlc_tracker's scheduler-port probe should see it: addresses are
    reused, as ZeroMQ does, so that a port an earlier job left in TIME_WAIT is not skipped."""

    def __getattr__(self, name):
        return getattr(socket, name)

    @staticmethod
    def socket(*args, **kwargs):
        sock = socket.socket(*args, **kwargs)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        return sock


def port_is_free(port):
    """Whether ``port`` can be bound on every address (as the scheduler will: ZeroMQ reuses
    addresses, so connections of an earlier job still in TIME_WAIT do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(('', port))
        except OSError:
            return False
    return True


def install(modules, supervisor, host, port, extra_env):
    """Point dmlc_tracker at the supervisor, the given host and port, and extra variables."""
    tracker = modules['tracker']
    for module in modules.values():
        if hasattr(module, 'subprocess'):
            module.subprocess = supervisor
    tracker.socket = ReusingSockets()
    submit = tracker.submit

    def submit_with(nworker, nserver, fun_submit, hostIP='auto', pscmd=None):
        def start(workers, servers, envs):
            envs.update(extra_env)
            return fun_submit(workers, servers, envs)
        return submit(nworker, nserver, start, host or hostIP, pscmd)
    tracker.submit = submit_with
    if port is not None:
        ps_tracker = tracker.PSTracker

        class FixedPortTracker(ps_tracker):
            def __init__(self, hostIP, cmd, port_=None, port_end=None, envs=None):
                super().__init__(hostIP, cmd, port=port, port_end=port + 1, envs=envs)
        tracker.PSTracker = FixedPortTracker


def dmlc_args(modules, args):
    """The options of dmlc_tracker's own command line for this job."""
    argv = ['--cluster', args.launcher, '--num-workers', str(args.num_workers),
            '--num-servers', str(args.num_servers)]
    if args.hostfile:
        argv += ['--host-file', args.hostfile]
    if args.sync_dst_dir:
        argv += ['--sync-dst-dir', args.sync_dst_dir]
    # dmlc_tracker joins the command's words into a shell line: quote them.
    options = modules['opts'].get_opts(argv + ['--'] + [shlex.quote(c) for c in args.command])
    options.logdir = options.sge_log_dir or '.'   # what dmlc_tracker.sge reads but never sets
    options.vcores = options.worker_cores
    return options


# --- the job --------------------------------------------------------------------------------

def check_args(args):
    if args.num_workers < 1:
        raise UserError('-n %d: at least one worker is needed' % args.num_workers)
    if args.num_servers < 1:
        raise UserError('-s %d: the parameter-server kvstore needs at least one server'
                        % args.num_servers)
    if args.launcher in ('ssh', 'mpi') and not args.hostfile:
        raise UserError('--launcher %s: name the machines with -H HOSTFILE' % args.launcher)
    if args.hostfile and not os.path.isfile(args.hostfile):
        raise UserError('-H %s: no such file' % args.hostfile)
    if args.port is not None:
        if not 0 < args.port < 65536:
            raise UserError('--port %d: not a TCP port' % args.port)
        if not port_is_free(args.port):
            raise UserError('--port %d: already in use on this machine (pick another, or stop '
                            'what listens there)' % args.port)
    if not (args.exit_timeout > 0 and args.exit_timeout < float('inf')):
        raise UserError('--exit_timeout %g: must be a positive number of seconds'
                        % args.exit_timeout)
    check_command(args.command)


def check_command(command):
    """Refuse, before anything starts, a main.py command that cannot form one job: options or
    configs main.py would refuse (every process would print the same error), no distributed
    kvstore (each worker would train alone, duplicate runs), or --valid/--predict (they train
    nothing). Other commands (your own scripts) are started as given."""
    argv = _main_py_arguments(command)
    if argv is None:
        return
    args = main_options.check_command(argv)
    if not args.kvstore.startswith('dist'):
        raise UserError('the command runs main.py with --kvstore %s: its workers would train '
                        'alone, not as one job; add --kvstore dist_sync (or dist_device_sync, '
                        'dist_async)' % args.kvstore)
    for mode in ('valid', 'predict'):
        if getattr(args, mode):
            raise UserError('the command runs main.py --%s, which trains nothing: launch.py '
                            'starts training jobs' % mode)


def _main_py_arguments(command):
    """main.py's arguments in ``command`` (``... main.py ARGS`` or ``python -m main ARGS``),
    or None for another command."""
    for k, word in enumerate(command):
        if os.path.basename(word) == 'main.py':
            return command[k + 1:]
        if word == '-m' and k + 1 < len(command) and command[k + 1] == 'main':
            return command[k + 2:]
    return None


def watch(supervisor, submitting, failure, exit_timeout, record_path):
    """Wait for the job to end; return (exit status, one line) for a failure, (0, None) else."""
    finished_at = None
    while True:
        time.sleep(POLL_S)
        if failure:
            return 2, 'dmlc_tracker could not start the job: %s' % (failure[0] or repr(failure[0]))
        processes = supervisor.snapshot()
        for process in processes:
            code = process.popen.poll()
            if code is not None and code != 0:
                return (code if code > 0 else 128 - code,
                        '%s; stopped the whole job; newest checkpoint: %s'
                        % (process.describe(), describe_newest(record_path)))
        running = [p for p in processes if p.popen.poll() is None]
        if processes and not running and not submitting.is_alive():
            return 0, None
        if finished_at is None and any(p.popen.poll() == 0 and p.label.startswith(('worker', 'scheduler'))
                                       for p in processes):
            finished_at = time.monotonic()
        if finished_at is not None and time.monotonic() - finished_at > exit_timeout:
            return 1, ('%s still running %g s after a worker finished; stopped the whole job; '
                       'newest checkpoint: %s' % (', '.join(p.label for p in running), exit_timeout,
                                                  describe_newest(record_path)))


def launch(args):
    check_args(args)
    modules = import_tracker()
    supervisor = Supervisor()
    host = args.host or ('127.0.0.1' if args.launcher == 'local' else None)
    record_dir = tempfile.mkdtemp(prefix='launch-', dir=os.getcwd())
    record_path = os.path.join(record_dir, 'run.json')
    extra_env = {RUN_RECORD_ENV: record_path}
    if args.launcher == 'local':
        # One machine: every process listens on the loopback address, and the cores are shared.
        extra_env['DMLC_NODE_HOST'] = host
        if 'OMP_NUM_THREADS' not in os.environ:
            extra_env['OMP_NUM_THREADS'] = max(1, len(os.sched_getaffinity(0)) // args.num_workers)
    install(modules, supervisor, host, args.port, extra_env)
    options = dmlc_args(modules, args)
    failure = []

    def submit():
        try:
            getattr(modules[args.launcher], 'submit')(options)
        except Exception as error:   # reported by the watch below, with the job stopped
            failure.append(error)
    submitting = threading.Thread(target=submit, daemon=True)
    try:   # (common.cli.run turns SIGTERM into an exception: the job is stopped then too)
        submitting.start()
        status, line = watch(supervisor, submitting, failure, args.exit_timeout, record_path)
    finally:
        supervisor.stop_all()
        shutil.rmtree(record_dir, ignore_errors=True)
    if line:
        print('error: %s' % line, file=sys.stderr)
    return status
