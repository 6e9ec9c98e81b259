"""Train, validate and predict with MaskFlownet-S and MaskFlownet.

    python main.py CONFIG [--dataset_cfg D] [-g 0,1,..] [-c RUN[:STEPS]] [--clear_steps]
                   [--debug | --valid | --predict] [--resize H,W]

CONFIG is a network config in config/ (e.g. MaskFlownet_S.yaml), D a dataset config
(default chairs.yaml). Dataset roots come from config/datasets.yaml or MASKFLOWNET_* variables.
"""
import argparse
import os
import sys

from common.errors import UserError
from common.cli import run
from common.devices import use_all_cores

REPO = os.path.dirname(os.path.abspath(__file__))
SAMPLE_DATASETS = os.path.join(REPO, 'sample_data', 'datasets.yaml')
DEBUG_STEPS = 4          # --debug: steps per invocation
DEBUG_INTERVAL = 2       # --debug: validate and save every this many steps


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='network config: a name in config/ or a path')
    parser.add_argument('--dataset_cfg', default='chairs.yaml', help='dataset config (chairs.yaml)')
    parser.add_argument('-g', '--gpu_device', default='', help='GPU ids, e.g. 0,1; CPU if omitted')
    parser.add_argument('-c', '--checkpoint', default=None,
                        help='RUN[:STEPS] (a run id prefix in weights/) or a .params path')
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
    parser.add_argument('--occ_mask', action='store_true',
                        help='--predict: also save the learned occlusion mask as FLOW_occ.png')
    return parser.parse_args(argv)


def resolve_checkpoint(args):
    """(path, run_id, steps) of -c, or (None, None, 0) without one."""
    from network.checkpoint import find_checkpoint
    if args.checkpoint is None:
        return None, None, 0
    return find_checkpoint(args.checkpoint)


def run_training(args, config, dataset_cfg, ctx):
    import mxnet as mx
    from network import checkpoint
    from network.pipeline import Pipeline
    from network.train_run import log_start, shrink_for_debug, train, training_data
    from network.training import (FlowTrainer, NonFiniteStep, RunLog, check_batch_split,
                                  new_run_id, plan_start)
    from common.files import remove_stale_temporaries

    if args.debug and 'MASKFLOWNET_DATASETS' not in os.environ:
        from reader import roots
        os.environ['MASKFLOWNET_DATASETS'] = SAMPLE_DATASETS
        for key in roots.DATASETS:   # the bundled samples, not whatever a variable points at
            os.environ.pop(roots.env_var(key), None)
    path, run_id, steps = resolve_checkpoint(args)
    if args.seed is not None:
        mx.random.seed(args.seed)
    if args.shard < 1:
        raise UserError('--shard %d: must be 1 or more' % args.shard)
    data = training_data(dataset_cfg, config.network_class, shard=args.shard)
    if args.debug:
        data = shrink_for_debug(data, len(ctx))
    pipe = Pipeline(config, ctx)
    schedule = dataset_cfg.optimizer.learning_rate.get(None) or config.optimizer.learning_rate.get(None)
    if schedule is None:
        raise UserError('config %s has no optimizer.learning_rate schedule' % config.source)
    weight_decay = config.optimizer.wd.get(None) if args.use_wd else None
    if args.use_wd and weight_decay is None:
        print('warning: --use_wd: config %s sets no optimizer.wd; training without weight decay'
              % config.source, file=sys.stderr)
    check_batch_split(data.batch_size, len(ctx))   # before the run leaves any log
    trainer = FlowTrainer(pipe, schedule, weight_decay)
    head_only = False
    if path is not None:
        head_only = pipe.load_start_point(path)
        if config.network_class == 'MaskFlownet':
            pipe.fix_head()
    newest = [c[2] for c in checkpoint.list_checkpoints() if c[0] == run_id][-1:]
    start = plan_start(path, run_id, steps, newest[0] if newest else None, args.clear_steps,
                       head_only)
    if start.load_states:
        trainer.load_states(path[:-len('.params')] + '.states')
    steps = start.steps
    run_id = start.run_id or new_run_id(','.join(str(c) for c in ctx))
    if start.branched_from:
        print('%s is not the newest checkpoint of its run: continuing its history as the new '
              'run %s (the later checkpoints stay as they are)' % (path, run_id))
    remove_stale_temporaries(checkpoint.WEIGHTS_DIR)
    log_dir = os.path.join('logs', 'debug' if args.debug else '')
    log = RunLog(os.path.join(log_dir, '%s.log' % run_id), echo=True)
    log_start(log, steps, data, vars(args), start.branched_from)
    interval = DEBUG_INTERVAL if args.debug else None
    max_steps = args.max_steps if args.max_steps is not None else (DEBUG_STEPS if args.debug else None)
    try:
        steps = train(pipe, trainer, data, run_id, steps, log,
                      validation_steps=interval or dataset_cfg.validation_steps.get(2500),
                      checkpoint_steps=interval or dataset_cfg.checkpoint_steps.get(5000),
                      max_steps=max_steps, seed=args.seed, validation_batch=args.batch)
    except NonFiniteStep as error:
        raise NonFiniteStep('%s; %s' % (error, resume_hint(args, run_id, path))) from None
    finally:
        log.close()
    print('run %s stopped at step %d; %s' % (run_id, steps, resume_hint(args, run_id, path)))


def resume_hint(args, run_id, start_path):
    """Where to resume ``run_id`` from: its newest checkpoint, else the one it started from."""
    from network import checkpoint
    saved = [c for c in checkpoint.list_checkpoints() if c[0] == run_id]
    if not saved:
        return 'no checkpoint written yet%s' % (' (it started from %s)' % start_path if start_path else '')
    return 'newest checkpoint %s; resume with: python main.py %s --dataset_cfg %s -c %s%s' % (
        saved[-1][2], args.config, args.dataset_cfg, run_id, ' --debug' if args.debug else '')


def run_inference(args, config, ctx, resize):
    """--valid and --predict: evaluate or write benchmark submissions for one checkpoint."""
    from network.evaluate import format_report, validate_checkpoint
    from network.pipeline import Pipeline
    from network.submission import predict_submissions
    from network.training import RunLog

    if args.checkpoint is None:
        raise UserError('--valid and --predict need a checkpoint: -c RUN[:STEPS] or -c FILE.params')
    path, run_id, steps = resolve_checkpoint(args)
    pipe = Pipeline(config, ctx)
    pipe.load(path)
    name = os.path.basename(path)[:-len('.params')]
    if args.predict:
        prefix = os.path.join('flows', name)
        report = predict_submissions(pipe, prefix, args.batch, resize, args.occ_mask)
        for what, written, note in report:
            print('%-10s %s' % (what, note if isinstance(note, str) else
                                '%d written, %d already there' % (written, note)))
        print('submissions under %s_sintel and %s_kitti' % (prefix, prefix))
        return
    log = RunLog(os.path.join('logs', 'val', '%s.val.log' % (run_id or name)))
    try:
        report = validate_checkpoint(pipe, log, steps, args.batch, resize)
    finally:
        log.close()
    print('checkpoint %s (steps=%d)' % (path, steps))
    print(format_report(report))
    print('logged to %s' % log.path)


def main(argv=None):
    args = parse_args(argv)
    use_all_cores()
    return run(lambda: dispatch(args))


def dispatch(args):
    from common.devices import parse_devices
    from common.options import parse_resize
    from network.config import load_config
    if args.batch < 1:
        raise UserError('--batch %d: must be 1 or more' % args.batch)
    if args.max_steps is not None and args.max_steps < 1:
        raise UserError('--max_steps %d: must be 1 or more' % args.max_steps)
    config = load_config(args.config)
    dataset_cfg = load_config(args.dataset_cfg)
    resize = parse_resize(args.resize)
    ctx = parse_devices(args.gpu_device)
    if args.valid or args.predict:
        run_inference(args, config, ctx, resize)
    else:
        run_training(args, config, dataset_cfg, ctx)


if __name__ == '__main__':
    sys.exit(main())
