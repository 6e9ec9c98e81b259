"""main.py's options: its argument parser and the checks argparse cannot make, in a module
light enough for launch.py to check a main.py command before it starts a job (no MXNet)."""
from common.cli import ArgumentParser, add_checkpoint_options
from common.config import load_config
from common.errors import UserError
from common.options import check_seed

from .distributed import KVSTORES

DESCRIPTION = 'Train, validate and predict with MaskFlownet-S and MaskFlownet.'


class _Refusing(ArgumentParser):
    """main.py's parser for a command launch.py checks: a usage error is a UserError."""

    def error(self, message):
        raise UserError('the command runs main.py with %s' % message)


def parse_args(argv=None, prog=None, parser_class=ArgumentParser):
    parser = parser_class(description=DESCRIPTION, prog=prog)
    parser.add_argument('config', help='network config: a name in config/ or a path')
    parser.add_argument('--dataset_cfg', default='chairs.yaml',
                        help='dataset config (chairs.yaml), or one of your own data '
                             '(dataset: custom, docs/own_data.md)')
    parser.add_argument('-g', '--gpu_device', default='', help='GPU ids, e.g. 0,1; CPU if omitted')
    parser.add_argument('--kvstore', default='device',
                        choices=KVSTORES,
                        help='how gradients are summed: over the devices of this process '
                             '(device, local) or over the workers of a job that launch.py '
                             'started (dist_*); see docs/distributed.md')
    add_checkpoint_options(parser, required=False)
    parser.add_argument('--clear_steps', action='store_true',
                        help='start a new run at step 0 from the checkpoint weights')
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument('--debug', action='store_true',
                      help='a few steps on the bundled sample data (or your datasets, if '
                           'MASKFLOWNET_DATASETS is set), validating and saving every 2 steps')
    mode.add_argument('--valid', action='store_true',
                      help="validate the checkpoint on the benchmarks, or on a custom "
                           "--dataset_cfg's validation_list")
    mode.add_argument('--predict', action='store_true', help='write benchmark submissions')
    parser.add_argument('--resize', default='', help='inference size H,W (multiples of 64)')
    parser.add_argument('--batch', type=int, default=8,
                        help='image pairs per forward pass in validation and prediction')
    parser.add_argument('--max_steps', type=int, default=None,
                        help='stop after this many training steps in this invocation')
    parser.add_argument('--use_wd', action='store_true',
                        help="apply the config's optimizer.wd (the original never did)")
    parser.add_argument('--seed', type=int, default=None, help='seed of data order and augmentation')
    parser.add_argument('--shard', type=int, default=1,
                        help='FlyingThings3D: train on every N-th sample (the original option)')
    parser.add_argument('--no_tensorboard', action='store_true',
                        help='training: write no TensorBoard events beside the log')
    parser.add_argument('--occ_mask', action='store_true',
                        help='--predict: also save the learned occlusion mask as FLOW_occ.png')
    parser.add_argument('--backend', default='mxnet', choices=('mxnet', 'onnxruntime'),
                        help='--valid and --predict: run the network with MXNet (default) or '
                             'with onnxruntime, from models exported once per size '
                             '(docs/onnx.md)')
    return parser.parse_args(argv)


def check_args(args):
    """main.py's numbers, checked before any work (argparse only checks that they are ints)."""
    for option, value in (('--batch', args.batch), ('--max_steps', args.max_steps),
                          ('--shard', args.shard)):
        if value is not None and value < 1:
            raise UserError('%s %d: must be 1 or more' % (option, value))
    check_seed(args.seed)


def check_command(argv):
    """What main.py would check of ``argv`` before it builds anything: its options and both
    configs. launch.py calls it, so that a job is not started for a mistake every process
    would report. Returns the parsed arguments."""
    args = parse_args(argv, prog='main.py', parser_class=_Refusing)
    check_args(args)
    load_config(args.config, 'network')
    load_config(args.dataset_cfg, 'dataset')
    return args
