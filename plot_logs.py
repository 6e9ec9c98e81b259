"""Training curves from run logs, and their conversion to TensorBoard events.

    python plot_logs.py OUT.png|OUT.svg LOG [LOG ...] [--tensorboard DIR] [--smoothing 0.95]
                        [--metrics METRIC ...]

LOG is a run log in the original's line format: this project's logs/RUN.log or the original
MaskFlownet's published logs (logs/5adNov03-0005.log, ...). The figure shows the training EPE
(smoothed; dotted lines mark restarts) and the validation EPEs (and KITTI Fl) against steps,
one colour per run; --metrics draws others the logs hold (above3px, epe_s40+, ..., or all).
With --tensorboard DIR each log is also written as TensorBoard events under DIR/RUN/, all its
metrics with the tags live training writes, so that `tensorboard --logdir DIR` shows the runs
side by side. Lines that cannot be read are counted and reported, never fatal.
"""
import sys

from common.cli import ArgumentParser, run
from common.environment import check_environment


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('out', help='the figure: .png or .svg')
    parser.add_argument('logs', nargs='+', metavar='LOG', help='run logs (logs/RUN.log)')
    parser.add_argument('--tensorboard', metavar='DIR', default=None,
                        help='also write each log as TensorBoard events under DIR/RUN/')
    parser.add_argument('--smoothing', type=float, default=0.95,
                        help='moving-average weight for the training EPE, 0 to 1 (0: none)')
    parser.add_argument('--metrics', nargs='+', metavar='METRIC', default=None,
                        help="validation metrics to draw (default: epe, kitti and fl_all, the "
                             "original's); e.g. above3px epe_s40+, or all")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)

    def body():
        check_environment()
        from tracking.curves import plot_logs   # here: --help answers without matplotlib
        metrics = 'all' if args.metrics == ['all'] else args.metrics
        print('\n'.join(plot_logs(args.out, args.logs, args.tensorboard, args.smoothing, metrics)))
    return run(body)


if __name__ == '__main__':
    sys.exit(main())
