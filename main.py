"""Train, validate and predict with MaskFlownet-S and MaskFlownet.

    python main.py CONFIG [--dataset_cfg D] [-g 0,1,..] [-c RUN[:STEPS]] [--clear_steps]
                   [--debug | --valid | --predict] [--resize H,W]

CONFIG is a network config in config/ (e.g. MaskFlownet_S.yaml), D a dataset config
(default chairs.yaml). Dataset roots come from config/datasets.yaml or MASKFLOWNET_* variables.
"""
import argparse
import sys

from common.errors import UserError
from common.cli import run
from common.devices import prepare_process



def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='network config: a name in config/ or a path')
    parser.add_argument('--dataset_cfg', default='chairs.yaml', help='dataset config (chairs.yaml)')
    parser.add_argument('-g', '--gpu_device', default='', help='GPU ids, e.g. 0,1; CPU if omitted')
    parser.add_argument('--kvstore', default='device',
                        choices=('device', 'local', 'dist_sync', 'dist_device_sync', 'dist_async'),
                        help='how gradients are summed: over the devices of this process '
                             '(device, local) or over the workers of a job that launch.py '
                             'started (dist_*); see README')
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
    return parser.parse_args(argv)


def run_training(args, config, dataset_cfg, ctx):
    from network.training import run_training as train
    result = train(config, dataset_cfg, ctx, checkpoint_spec=args.checkpoint,
                   clear_steps=args.clear_steps, debug=args.debug, max_steps=args.max_steps,
                   seed=args.seed, use_wd=args.use_wd, shard=args.shard,
                   validation_batch=args.batch, log_args=vars(args), kvstore=args.kvstore,
                   tensorboard=not args.no_tensorboard)
    if result.worker:
        print('worker %d stopped at step %d' % (result.worker, result.steps))
    elif result.newest is None:
        print('run %s stopped at step %d; no checkpoint written yet' % (result.run_id, result.steps))
    else:
        print('run %s stopped at step %d; newest checkpoint %s; resume with: python main.py %s '
              '--dataset_cfg %s -c %s%s' % (result.run_id, result.steps, result.newest, args.config,
                                            args.dataset_cfg, result.run_id,
                                            ' --debug' if args.debug else ''))


def run_inference(args, config, ctx, resize):
    """--valid and --predict: evaluate or write benchmark submissions for one checkpoint."""
    from network.evaluate import run_benchmarks
    print(run_benchmarks(config, args.checkpoint, ctx, predict=args.predict,
                         batch_size=args.batch, resize=resize, occ_mask=args.occ_mask))


def main(argv=None):
    args = parse_args(argv)
    prepare_process()
    return run(lambda: dispatch(args))


def dispatch(args):
    from common.devices import parse_devices
    from common.options import parse_resize
    from network.config import load_config
    if args.batch < 1:
        raise UserError('--batch %d: must be 1 or more' % args.batch)
    config = load_config(args.config)
    dataset_cfg = load_config(args.dataset_cfg)
    resize = parse_resize(args.resize)
    ctx = parse_devices(args.gpu_device)
    if args.download:
        from network.checkpoint import find_or_download
        if args.checkpoint is None:
            raise UserError('--download: name the published checkpoint with -c (e.g. -c 5adNov03)')
        find_or_download(args.checkpoint, config.network_class, config_source=config.source,
                         training=not (args.valid or args.predict))
    if args.valid or args.predict:
        run_inference(args, config, ctx, resize)
    else:
        run_training(args, config, dataset_cfg, ctx)


if __name__ == '__main__':
    sys.exit(main())
