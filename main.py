"""Train, validate and predict with MaskFlownet-S and MaskFlownet.

    python main.py CONFIG [--dataset_cfg D] [-g 0,1,..] [-c RUN[:STEPS]] [--clear_steps]
                   [--debug | --valid | --predict] [--resize H,W]

CONFIG is a network config in config/ (e.g. MaskFlownet_S.yaml), D a dataset config
(default chairs.yaml). Dataset roots come from config/datasets.yaml or MASKFLOWNET_* variables.
"""
import argparse
import sys

from common.cli import run
from common.devices import prepare_process
from common.environment import check_environment
from engine.distributed import KVSTORES, check_launched


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='network config: a name in config/ or a path')
    parser.add_argument('--dataset_cfg', default='chairs.yaml', help='dataset config (chairs.yaml)')
    parser.add_argument('-g', '--gpu_device', default='', help='GPU ids, e.g. 0,1; CPU if omitted')
    parser.add_argument('--kvstore', default='device',
                        choices=KVSTORES,
                        help='how gradients are summed: over the devices of this process '
                             '(device, local) or over the workers of a job that launch.py '
                             'started (dist_*); see docs/distributed.md')
    parser.add_argument('-c', '--checkpoint', default=None,
                        help='RUN[:STEPS] (a run id prefix in weights/) or a .params path')
    parser.add_argument('--download', action='store_true',
                        help="-c names a published checkpoint of the original (5adNov03, ...) "
                             "missing from weights/: download it (verified) first")
    parser.add_argument('--clear_steps', action='store_true',
                        help='start a new run at step 0 from the checkpoint weights')
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument('--debug', action='store_true',
                      help='a few steps on the bundled sample data (or your datasets, if '
                           'MASKFLOWNET_DATASETS is set), validating and saving every 2 steps')
    mode.add_argument('--valid', action='store_true', help='validate the checkpoint')
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


def main(argv=None):
    args = parse_args(argv)
    prepare_process()

    def body():
        check_environment()
        check_launched(args.kvstore)   # before MXNet loads: a server process would start serving
        from engine.commands import main as work   # here: --help answers without MXNet
        print(work(args))
    return run(body)


if __name__ == '__main__':
    sys.exit(main())
