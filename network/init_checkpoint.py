"""Write a freshly initialised (untrained) checkpoint for a network config.

    python -m network.init_checkpoint CONFIG OUT.params [--seed N]

Useful to try the tools end to end before you have trained or downloaded weights: the flow
from such a checkpoint is meaningless, but every file format and shape is real.
"""
import sys

from common.cli import ArgumentParser, run


def main(argv=None):
    parser = ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='network config name in config/ or a path')
    parser.add_argument('out', help='path of the .params file to write')
    parser.add_argument('--seed', type=int, default=0, help='random seed of the initialisation')
    args = parser.parse_args(argv)

    def body():
        from common.config import load_config
        from common.environment import check_environment
        from common.errors import UserError
        from common.files import check_output_paths
        from common.options import check_seed
        check_environment()   # before MXNet loads: it aborts on a malformed OMP_NUM_THREADS
        check_seed(args.seed)
        if not args.out.endswith('.params'):
            raise UserError('%s: a checkpoint is a .params file (-c takes RUN_STEPS.params)'
                            % args.out)
        config = load_config(args.config, 'network')
        check_output_paths([args.out], inputs=[config.source])   # before the network is built
        import mxnet as mx
        from .pipeline import Pipeline
        mx.random.seed(args.seed)
        pipe = Pipeline(config)
        pipe.save(args.out)
        print('%s: untrained %s checkpoint (seed %d)' % (args.out, pipe.network_class, args.seed))
    return run(body)


if __name__ == '__main__':
    sys.exit(main())
