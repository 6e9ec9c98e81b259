"""What ``main.py`` does, as one library call: ``main(args)`` checks the options, then trains,
validates (``--valid``) or writes benchmark submissions (``--predict``)."""
import os

from common.config import load_config
from common.devices import parse_devices
from common.errors import UserError
from common.files import prove_writable
from common.options import parse_resize
from tracking.runlog import RunLog

from .evaluate import format_report, validate_checkpoint
from .failures import memory_guard
from .onnx_backend import check_backend, open_pipeline
from .runs import find_checkpoint, find_or_download
from .submission import predict_submissions
from .train import RunOptions, run_training


MAX_SEED = 2 ** 31 - 1   # MXNet seeds with a C int


def check_args(args):
    """main.py's numbers, checked before any work (argparse only checks that they are ints)."""
    for option, value in (('--batch', args.batch), ('--max_steps', args.max_steps),
                          ('--shard', args.shard)):
        if value is not None and value < 1:
            raise UserError('%s %d: must be 1 or more' % (option, value))
    if args.seed is not None and not 0 <= args.seed <= MAX_SEED:
        raise UserError('--seed %d: must be from 0 to %d' % (args.seed, MAX_SEED))


def main(args):
    """``main.py``'s work for parsed arguments ``args``; returns the text to print."""
    check_args(args)
    config = load_config(args.config, 'network')
    dataset_cfg = load_config(args.dataset_cfg, 'dataset')
    resize = parse_resize(args.resize)
    backend = getattr(args, 'backend', 'mxnet')
    if backend != 'mxnet' and not (args.valid or args.predict):
        raise UserError('--backend %s: only --valid and --predict run on it; training runs on '
                        'mxnet' % backend)
    device = check_backend(backend, args.gpu_device)
    ctx = parse_devices(args.gpu_device) if backend == 'mxnet' else None
    if args.download:
        if args.checkpoint is None:
            raise UserError('--download: name the published checkpoint with -c (e.g. -c 5adNov03)')
        find_or_download(args.checkpoint, config.network_class, config_source=config.source,
                         training=not (args.valid or args.predict))
    if args.valid or args.predict:
        return run_benchmarks(config, args.checkpoint, ctx, predict=args.predict,
                              batch_size=args.batch, resize=resize, occ_mask=args.occ_mask,
                              backend=backend, device=device)
    return train(args, config, dataset_cfg, ctx)


def train(args, config, dataset_cfg, ctx):
    options = RunOptions(checkpoint=args.checkpoint, clear_steps=args.clear_steps,
                         debug=args.debug, max_steps=args.max_steps, seed=args.seed,
                         use_wd=args.use_wd, shard=args.shard, validation_batch=args.batch,
                         kvstore=args.kvstore, tensorboard=not args.no_tensorboard,
                         log_args=vars(args))
    result = run_training(config, dataset_cfg, ctx, options)
    if result.worker:
        return 'worker %d stopped at step %d' % (result.worker, result.steps)
    if result.newest is None:
        return 'run %s stopped at step %d; no checkpoint written yet' % (result.run_id, result.steps)
    return ('run %s stopped at step %d; newest checkpoint %s; resume with: python main.py %s '
            '--dataset_cfg %s -c %s%s' % (result.run_id, result.steps, result.newest, args.config,
                                          args.dataset_cfg, result.run_id,
                                          ' --debug' if args.debug else ''))


def run_benchmarks(config, checkpoint_spec, ctx=None, predict=False, batch_size=1, resize=None,
                   occ_mask=False, backend='mxnet', device=None):
    """``main.py --valid`` (``predict=False``) or ``--predict`` for the checkpoint ``-c`` names
    (``RUN[:STEPS]`` or a .params path); returns the report to print. ``backend``
    'onnxruntime': run by onnxruntime on ``device`` (engine/onnx_backend.py) instead of MXNet on
    ``ctx``.

    ``--valid`` logs to ``logs/val/RUN.val.log``; ``--predict`` writes under ``flows/``.
    """
    if checkpoint_spec is None:
        raise UserError('--valid and --predict need a checkpoint: -c RUN[:STEPS] or -c FILE.params')
    path, run_id, steps = find_checkpoint(checkpoint_spec)
    pipe = open_pipeline(backend, config, path, device, ctx)
    name = os.path.basename(path)[:-len('.params')]
    reduce = '--batch or --resize' if resize else '--batch'
    if predict:
        prefix = os.path.join('flows', name)
        with memory_guard('writing the submissions of %s' % path, reduce):
            report = predict_submissions(pipe, prefix, batch_size, resize, occ_mask)
        lines = ['%-10s %s' % (what, note if isinstance(note, str) else
                               '%d written, %d already there' % (written, note))
                 for what, written, note in report]
        return '\n'.join(lines + ['submissions under %s_sintel and %s_kitti' % (prefix, prefix)])
    log_path = os.path.join('logs', 'val', '%s.val.log' % (run_id or name))
    prove_writable(os.path.dirname(log_path))
    log = RunLog(log_path)
    try:
        with memory_guard('validating %s' % path, reduce):
            report = validate_checkpoint(pipe, log, steps, batch_size, resize)
    finally:
        log.close()
    return '\n'.join(['checkpoint %s (steps=%d)' % (path, steps), format_report(report),
                      'logged to %s' % log.path])
