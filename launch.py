"""Start a training job on several processes or machines with MXNet's parameter-server kvstore.

    python launch.py -n WORKERS [-s SERVERS] [--launcher local|ssh|mpi|slurm|sge] [-H HOSTFILE]
                     [--host ADDRESS] [--port PORT] COMMAND...

e.g. ``python launch.py -n 2 -s 1 --launcher local python main.py MaskFlownet_S.yaml --debug
--kvstore dist_sync``. The options follow MXNet's tools/launch.py. The processes (scheduler,
servers, workers) are started by the ``dmlc_tracker`` package that ships with the mxnet wheel;
``engine.launcher`` adds what a long run needs on top of it (a watch on every process, a
fixed scheduler address and port).
"""
import argparse
import sys

from common.cli import ArgumentParser, run
from common.environment import check_environment
from engine.launcher import LAUNCHERS, launch


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('-n', '--num-workers', type=int, required=True, help='worker processes')
    parser.add_argument('-s', '--num-servers', type=int, default=None,
                        help='server processes (default: as many as workers)')
    parser.add_argument('--launcher', default='ssh', choices=LAUNCHERS,
                        help='how the processes are started (default ssh, as MXNet)')
    parser.add_argument('-H', '--hostfile', default=None,
                        help='ssh and mpi: the machines, one per line (HOST or HOST:SSH_PORT)')
    parser.add_argument('--host', default=None,
                        help="the scheduler's address as the other machines reach this one "
                             '(default 127.0.0.1 for local; guessed by dmlc_tracker otherwise)')
    parser.add_argument('--port', type=int, default=None,
                        help="the scheduler's TCP port (default: the first free one from 9091)")
    parser.add_argument('--sync-dst-dir', default=None,
                        help='ssh: rsync this folder to DIR on every machine and run there')
    parser.add_argument('--exit_timeout', type=float, default=120,
                        help='seconds the job may take to end after a worker finished')
    parser.add_argument('command', nargs=argparse.REMAINDER, help='the command of every process')
    args = parser.parse_args(argv)
    if not args.command:
        parser.error('the command to run is missing')
    if args.num_servers is None:
        args.num_servers = args.num_workers
    return args


def main(argv=None):
    args = parse_args(argv)
    def body():
        check_environment()
        return launch(args)
    return run(body)


if __name__ == '__main__':
    sys.exit(main())
