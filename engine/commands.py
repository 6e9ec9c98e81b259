"""What ``main.py`` does, as one library call: ``main(args)`` checks the options, then trains,
validates (``--valid``) or writes benchmark submissions (``--predict``).

``--valid`` validates on the benchmarks (``engine.evaluate.BENCHMARKS``), unless
``--dataset_cfg`` names a custom dataset config (``dataset: custom``): then it validates on
that config's ``validation_list`` alone."""
import os

from common.config import load_config
from common.devices import parse_devices
from common.errors import UserError
from common.files import prove_writable
from common.options import parse_resize
from reader.mixes import custom_validation
from tracking.runlog import RunLog

from .evaluate import benchmark_plan, format_report, validate_checkpoint, validate_list
from .failures import memory_guard
from .onnx_backend import check_backend, open_pipeline
from .runs import find_checkpoint, find_or_download
from .submission import predict_submissions, submission_plan
from .main_options import check_args
from .train import RunOptions, run_training


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
    custom = dataset_cfg.dataset.value == 'custom' and (args.valid or args.predict)
    if custom and args.predict:
        raise UserError('--predict writes the benchmarks\' test submissions; for the flow of your '
                        'own pairs use predict_new_data.py --pairs LIST or --frames DIR '
                        '(--dataset_cfg %s is a custom dataset config)' % args.dataset_cfg)
    listed = custom_validation(dataset_cfg) if custom else None   # checked before any work
    if args.download:
        if args.checkpoint is None:
            raise UserError('--download: name the published checkpoint with -c (e.g. -c 5adNov03)')
        find_or_download(args.checkpoint, config.network_class, config_source=config.source,
                         training=not (args.valid or args.predict))
    if args.valid or args.predict:
        return run_benchmarks(config, args.checkpoint, ctx, predict=args.predict,
                              batch_size=args.batch, resize=resize, occ_mask=args.occ_mask,
                              listed=listed, backend=backend, device=device)
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
                   occ_mask=False, listed=None, backend='mxnet', device=None):
    """``main.py --valid`` (``predict=False``) or ``--predict`` for the checkpoint ``-c`` names
    (``RUN[:STEPS]`` or a .params path); returns the report to print. ``backend``
    'onnxruntime': run by onnxruntime on ``device`` (engine/onnx_backend.py) instead of MXNet on
    ``ctx``.

    ``--valid`` logs to ``logs/val/RUN.val.log``; ``--predict`` writes under ``flows/``.
    ``listed``: a checked custom validation list (``reader.custom.CustomList``) that
    ``--valid`` validates on instead of the benchmarks.
    """
    if checkpoint_spec is None:
        raise UserError('--valid and --predict need a checkpoint: -c RUN[:STEPS] or -c FILE.params')
    path, run_id, steps = find_checkpoint(checkpoint_spec)
    name = os.path.basename(path)[:-len('.params')]
    prefix = os.path.join('flows', name)
    log_path = os.path.join('logs', 'val', '%s.val.log' % (run_id or name))
    # What to read and where to write, found and checked before the network is built.
    if predict:
        tasks = submission_plan(prefix, resize)
    else:
        plan = benchmark_plan() if listed is None else None
        prove_writable(os.path.dirname(log_path))
    pipe = open_pipeline(backend, config, path, device, ctx)
    reduce = '--batch or --resize' if resize else '--batch'
    if predict:
        with memory_guard('writing the submissions of %s' % path, reduce):
            report = predict_submissions(pipe, prefix, batch_size, resize, occ_mask, tasks)
        lines = ['%-10s %s' % (what, note if isinstance(note, str) else
                               '%d written, %d already there' % (written, note))
                 for what, written, note in report]
        return '\n'.join(lines + ['submissions under %s_sintel and %s_kitti' % (prefix, prefix)])
    log = RunLog(log_path, hold=True)   # written from its first result on
    try:
        with memory_guard('validating %s' % path, reduce):
            if listed is not None:
                report = validate_list(pipe, listed, log, steps, batch_size, resize)
            else:
                report = validate_checkpoint(pipe, log, steps, batch_size, resize, plan=plan)
    finally:
        log.close()
    return '\n'.join(['checkpoint %s (steps=%d)' % (path, steps), format_report(report),
                      'logged to %s' % log.path])
