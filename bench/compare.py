"""Side-by-side speed and memory: this working tree against another git revision or the original code.

    python bench/compare.py --against REV            # e.g. HEAD~3, a tag, a commit
    python bench/compare.py --original PATH          # a checkout of microsoft/MaskFlownet
        [--tasks predict_S predict predict_S_kitti predict_kitti train_S]
        [--rounds 2] [--runs 5] [--steps 3] [--threads 2] [--backends mxnet onnxruntime]

Every figure comes from a fresh process with the same ``OMP_NUM_THREADS``; the two sides
alternate (A B, then B A, ...), and each figure is the median over rounds of the per-process
median. It prints each side's seconds and peak resident memory and the ratio this/other.

``--backends mxnet onnxruntime`` runs this working tree twice, with each backend, in the same
interleaved rounds (predict tasks only for onnxruntime). The onnxruntime side's models are
exported once before the rounds, into a temporary cache (MASKFLOWNET_ONNX_CACHE), so its
processes load them from there and never import MXNet (its memory is onnxruntime's alone).

Tasks: ``predict_S`` / ``predict``: one 436 x 1024 Sintel pair (network input 448 x 1024),
MaskFlownet-S / MaskFlownet, one warm-up, then ``--runs``; ``*_kitti``: one 375 x 1242 KITTI
pair (input 384 x 1280). ``train_S``: MaskFlownet-S training steps, batch 2, 384 x 512 chairs
crops augmented to 320 x 448 (the chairs settings), two warm-up steps, then ``--steps``.

It also prints the convolution work of each task (multiply-adds x 2 of every convolution,
deconvolution and deformable convolution; three times the forward work for a training step)
divided by the measured time, next to the fp32 GEMM rate numpy reaches on the same threads:
the distance between the two is the distance to the hardware. Where numpy's OpenBLAS does not
know the CPU and runs its generic kernels, the GEMM is measured again with the kernel for the
CPU's instruction set (OPENBLAS_CORETYPE), and the faster rate is the reference.

Weights are random: speed does not depend on them. A revision is checked out with
``git archive`` into a temporary folder; it must have ``network.pipeline.Pipeline`` and a
``FlowTrainer`` (``engine.trainer``, or ``network.training`` before the packages were split):
any revision since the one that added this file.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / 'tests' / 'data' / 'datasets'
PAIRS = {
    'sintel': [DATA / 'sintel/training/clean/alley_1/frame_0002.png',
               DATA / 'sintel/training/clean/alley_1/frame_0003.png'],
    'kitti': [DATA / 'kitti2015/training/image_2/000000_10.png',
              DATA / 'kitti2015/training/image_2/000000_11.png'],
}
CHAIRS = REPO / 'sample_data' / 'FlyingChairs_release' / 'data'
TASKS = {   # name: (kind, network, pair)
    'predict_S': ('predict', 'MaskFlownet_S', 'sintel'),
    'predict': ('predict', 'MaskFlownet', 'sintel'),
    'predict_S_kitti': ('predict', 'MaskFlownet_S', 'kitti'),
    'predict_kitti': ('predict', 'MaskFlownet', 'kitti'),
    'train_S': ('train', 'MaskFlownet_S', 'chairs'),
}
TRAIN_BATCH = 2
TRAIN_CROP = (384, 512)
TRAIN_TARGET = (320, 448)
WARMUP_STEPS = 2


# --- the child: one task on one side, in a fresh process --------------------------------------

def read_rgb(path):
    import cv2
    return cv2.imread(str(path))[:, :, ::-1].copy()


def chairs_batch():
    """The bundled 384 x 512 chairs sample, twice, as uint8 NCHW images and (x, y) NCHW flow."""
    import numpy as np
    img1, img2, flow = [], [], []
    for k in (1, 1):
        img1.append(read_rgb(CHAIRS / ('%05d_img1.ppm' % k)).transpose(2, 0, 1))
        img2.append(read_rgb(CHAIRS / ('%05d_img2.ppm' % k)).transpose(2, 0, 1))
        with open(CHAIRS / ('%05d_flow.flo' % k), 'rb') as f:
            header = np.frombuffer(f.read(12), np.int32)
            w, h = int(header[1]), int(header[2])
            flow.append(np.frombuffer(f.read(), np.float32).reshape(h, w, 2).transpose(2, 0, 1))
    return [np.stack(a) for a in (img1, img2, flow)]


CONV_OPS = {'Convolution': 1, 'Deconvolution': 1, '_contrib_DeformableConvolution': 2}  # weight input


def conv_flops(block, shape):
    """Floating-point operations (2 x multiply-adds) of the convolutions in one forward pass of
    ``block(img1, img2)`` for NCHW input ``shape``."""
    import mxnet as mx
    outputs, flat = [block(mx.sym.var('img1'), mx.sym.var('img2'))], []
    while outputs:
        item = outputs.pop()
        if isinstance(item, (list, tuple)):
            outputs.extend(item)
        else:
            flat.append(item)
    internals = mx.sym.Group(flat).get_internals()
    _, shapes, _ = internals.infer_shape(img1=shape, img2=shape)
    shape_of = dict(zip(internals.list_outputs(), shapes))
    nodes = json.loads(internals.tojson())['nodes']
    total = 0
    for node in nodes:
        if node['op'] not in CONV_OPS:
            continue
        source = nodes[node['inputs'][CONV_OPS[node['op']]][0]]
        while source['op'] == 'Concat':   # a weight padded with zeros: count the real one
            source = nodes[source['inputs'][0][0]]
        weight = shape_of[source['name'] + ('' if source['op'] == 'null' else '_output')]
        n, _, h, w = shape_of[node['name'] + '_output']
        if node['op'] == 'Deconvolution':   # each input position meets the whole kernel
            stride = json.loads(node['attrs']['stride'].replace('(', '[').replace(')', ']'))
            h, w = h // stride[0], w // stride[1]
        total += 2 * n * h * w * int(np.prod(weight))
    return total


def project_classes():
    """(Config, FlowTrainer) of this project at any revision: the packages were split later."""
    try:
        from common.config import Config
        from engine.trainer import FlowTrainer
    except ImportError:
        from network.config import Config
        from network.training import FlowTrainer
    return Config, FlowTrainer


def onnx_checkpoint(network):
    """Where prepare_onnx saves a network's random weights: in the cache folder."""
    return os.path.join(os.environ['MASKFLOWNET_ONNX_CACHE'], network + '.params')


def prepare_onnx(task):
    """Export the model of a predict task's network and pair size into the cache (this working
    tree), from random weights saved beside it."""
    sys.path.insert(0, str(REPO))
    import mxnet as mx
    from common.config import Config
    from engine.onnx_backend import OnnxPipeline
    from network.pipeline import Pipeline
    _, network, pair = TASKS[task]
    checkpoint = onnx_checkpoint(network)
    if not os.path.exists(checkpoint):
        mx.random.seed(0)
        Pipeline(Config({'network': {'class': network}}), [mx.cpu()]).save(checkpoint)
    OnnxPipeline(Config({'network': {'class': network}}), checkpoint).session(
        read_rgb(PAIRS[pair][0]).shape[:2])


def onnx_child(task, runs):
    """A predict task by the onnxruntime backend, from the cache prepare_onnx filled."""
    sys.path.insert(0, str(REPO))
    from common import devices
    devices.prepare_process()
    from common.config import Config
    from engine.onnx_backend import OnnxPipeline
    _, network, pair = TASKS[task]
    img1, img2 = (read_rgb(p) for p in PAIRS[pair])
    pipe = OnnxPipeline(Config({'network': {'class': network}}), onnx_checkpoint(network))
    times = []
    for k in range(runs + 1):
        start = time.perf_counter()
        pipe.predict_pair(img1, img2)
        if k:
            times.append(time.perf_counter() - start)
    assert 'mxnet' not in sys.modules
    return {'seconds': statistics.median(times), 'conv_gflop': None,
            'peak_rss_gb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2}


def child(side, code, task, runs, steps):
    if side == 'onnxruntime':
        return onnx_child(task, runs)
    sys.path.insert(0, code)
    if side != 'original':   # the process set-up of this project's command-line tools
        from common import devices
        getattr(devices, 'prepare_process', lambda: None)()   # (revisions before it: none)
    import numpy as np
    import mxnet as mx
    kind, network, pair = TASKS[task]
    mx.random.seed(0)
    if kind == 'predict':
        img1, img2 = (read_rgb(p) for p in PAIRS[pair])
        if side == 'original':
            from network import config as original_config, pipeline as original_pipeline
            pipe = original_pipeline.PipelineFlownet(
                [mx.cpu()], original_config.Reader({'network': {'class': network}}))
            run = lambda: next(pipe.predict([img1], [img2], batch_size=1))
        else:
            Config, _ = project_classes()
            from network.pipeline import Pipeline
            pipe = Pipeline(Config({'network': {'class': network}}), [mx.cpu()])
            run = lambda: pipe.predict_pair(img1, img2)
        h, w = img1.shape[:2]
        shape = (1, 3, h + (-h) % 64, w + (-w) % 64)
        flops = conv_flops(getattr(pipe, 'inference_network', pipe.network), shape)
        times = []
        for k in range(runs + 1):
            start = time.perf_counter()
            run()
            mx.nd.waitall()
            if k:
                times.append(time.perf_counter() - start)
    else:
        img1, img2, flow = chairs_batch()
        if side == 'original':
            import augmentation as original_augmentation
            from network import config as original_config, pipeline as original_pipeline
            pipe = original_pipeline.PipelineFlownet(
                [mx.cpu()], original_config.Reader({'network': {'class': network}}))
            pipe.trainer.set_learning_rate(1e-4)
            geo = original_augmentation.GeometryAugmentation(
                angle_range=(-17, 17), zoom_range=(0.5, 1 / 0.9), aspect_range=(0.9, 1 / 0.9),
                translation_range=0.1, target_shape=TRAIN_TARGET, orig_shape=TRAIN_CROP,
                batch_size=TRAIN_BATCH, relative_angle=0.25, relative_scale=(0.96, 1 / 0.96),
                relative_translation=0.25)
            color = original_augmentation.ColorAugmentation(
                contrast_range=(-0.4, 0.8), brightness_sigma=0.1, channel_range=(0.8, 1.4),
                batch_size=TRAIN_BATCH, shape=TRAIN_TARGET, noise_range=(0, 0.04), saturation=0.5,
                hue=0.5, eigen_aug=False)
            geo.hybridize()
            color.hybridize()
            step = lambda: pipe.train_batch(img1, img2, flow, geo, color)
        else:
            from network.augmentation import make_augmentations
            from network.pipeline import Pipeline
            Config, FlowTrainer = project_classes()
            pipe = Pipeline(Config({'network': {'class': network}}), [mx.cpu()])
            trainer = FlowTrainer(pipe, [[10 ** 9, 1e-4]])
            trainer.set_learning_rate(1)
            geo, color = make_augmentations('chairs', TRAIN_TARGET, TRAIN_CROP, TRAIN_BATCH)
            step = lambda: trainer.train_batch(img1, img2, flow, geo_aug=geo, color_aug=color)
        flops = 3 * conv_flops(pipe.network, (TRAIN_BATCH, 3) + TRAIN_TARGET)
        times = []
        for k in range(steps + WARMUP_STEPS):
            start = time.perf_counter()
            step()
            mx.nd.waitall()
            if k >= WARMUP_STEPS:
                times.append(time.perf_counter() - start)
    return {'seconds': statistics.median(times), 'conv_gflop': flops / 1e9,
            'peak_rss_gb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2}


def blas_core():
    """The kernel family numpy's OpenBLAS chose for this CPU ('Haswell', 'SkylakeX', ...), or
    None where that cannot be read (another BLAS, another system)."""
    import ctypes
    import numpy as np   # loads its BLAS
    try:
        with open('/proc/self/maps') as f:
            paths = sorted({line.split()[-1] for line in f if 'libopenblas' in line})
        for path in paths:
            lib = ctypes.CDLL(path)
            for name in ('openblas_get_corename64_', 'openblas_get_corename'):
                function = getattr(lib, name, None)
                if function is not None:
                    function.restype = ctypes.c_char_p
                    return function().decode()
    except OSError:
        pass
    return None


def gemm_rate(size=2048, repeats=5):
    """fp32 GFLOP/s of numpy's matrix product (its BLAS) on this process's threads."""
    import numpy as np
    a = np.random.default_rng(0).standard_normal((size, size), dtype=np.float32)
    b = a.T.copy()
    a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * size ** 3 / statistics.median(times) / 1e9


def suitable_blas_core():
    """The OpenBLAS kernel family for this CPU's instruction set, or None if unknown."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from common.devices import cpu_flags
    flags = cpu_flags()
    if {'avx512f', 'avx512bw', 'avx512vl', 'avx512dq'} <= flags:
        return 'SkylakeX'
    if 'avx2' in flags:
        return 'Haswell'
    return None


# --- the parent ----------------------------------------------------------------------------------

def run_child(args, env):
    out = subprocess.run([sys.executable, __file__] + args, capture_output=True, text=True, env=env)
    if out.returncode:
        sys.exit('bench/compare.py: child %s failed:\n%s' % (' '.join(args), out.stderr[-3000:]))
    return json.loads(out.stdout.strip().splitlines()[-1])


def checkout_revision(rev, folder):
    archive = subprocess.run(['git', '-C', str(REPO), 'archive', rev], capture_output=True)
    if archive.returncode:
        sys.exit('bench/compare.py: --against %s: %s' % (rev, archive.stderr.decode().strip()))
    subprocess.run(['tar', '-x', '-C', str(folder)], input=archive.stdout, check=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    other = parser.add_mutually_exclusive_group()
    other.add_argument('--against', metavar='REV', help='a git revision of this repository')
    other.add_argument('--original', metavar='PATH', help='a checkout of the original MaskFlownet')
    parser.add_argument('--tasks', nargs='+', default=['predict_S', 'predict', 'train_S'],
                        choices=sorted(TASKS))
    parser.add_argument('--rounds', type=int, default=2, help='A/B alternations (default 2)')
    parser.add_argument('--runs', type=int, default=5, help='timed pairs per predict process')
    parser.add_argument('--steps', type=int, default=3, help='timed steps per training process')
    parser.add_argument('--threads', type=int, default=len(os.sched_getaffinity(0)),
                        help='OMP_NUM_THREADS of every process (default: all cores)')
    parser.add_argument('--backends', nargs='+', default=['mxnet'], choices=('mxnet', 'onnxruntime'),
                        help="this working tree's backends, each a side of its own (default mxnet)")
    parser.add_argument('--child', nargs=3, metavar=('SIDE', 'CODE', 'TASK'), help=argparse.SUPPRESS)
    parser.add_argument('--prepare', metavar='TASK', help=argparse.SUPPRESS)
    parser.add_argument('--gemm', action='store_true', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child, runs=args.runs, steps=args.steps)))
        return
    if args.gemm:
        print(json.dumps({'gflops': gemm_rate(), 'core': blas_core()}))
        return
    if args.prepare:
        prepare_onnx(args.prepare)
        print(json.dumps({}))
        return
    if not (args.against or args.original):
        parser.error('one of --against REV or --original PATH is required')

    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), OPENBLAS_NUM_THREADS=str(args.threads),
               MKL_NUM_THREADS=str(args.threads))
    with tempfile.TemporaryDirectory() as tmp:
        if args.original:
            other_side, other_code, label = 'original', str(Path(args.original).resolve()), 'original'
            if not (Path(other_code) / 'network' / 'pipeline.py').is_file():
                sys.exit('bench/compare.py: --original %s: no network/pipeline.py there' % args.original)
        else:
            checkout_revision(args.against, Path(tmp))
            other_side, other_code, label = 'port', tmp, args.against
        sides = [('port', str(REPO), 'this')] if 'mxnet' in args.backends else []
        if 'onnxruntime' in args.backends:
            sides.append(('onnxruntime', str(REPO), 'onnxruntime'))
            env['MASKFLOWNET_ONNX_CACHE'] = os.path.join(tmp, 'onnx-cache')
            os.makedirs(env['MASKFLOWNET_ONNX_CACHE'])
            for task in args.tasks:
                if TASKS[task][0] == 'predict':
                    run_child(['--prepare', task], env)
        sides.append((other_side, other_code, label))
        results = {(task, name): [] for task in args.tasks for _, _, name in sides}
        for round_ in range(args.rounds):
            for task in args.tasks:
                for side, code, name in sides[round_ % len(sides):] + sides[:round_ % len(sides)]:
                    if side == 'onnxruntime' and TASKS[task][0] != 'predict':
                        continue
                    r = run_child(['--child', side, code, task, '--runs', str(args.runs),
                                   '--steps', str(args.steps)], env)
                    results[task, name].append(r)
                    print('round %d %-16s %-10s %7.3f s  %5.2f GB' % (round_ + 1, task, name, r['seconds'],
                                                                    r['peak_rss_gb']), flush=True)
        gemm_runs = [run_child(['--gemm'], env)]
        # OpenBLAS picks its kernels by CPU model, and releases older than the CPU fall back to
        # generic SSE3 code ('Prescott'); the machine's rate is that of the kernel for its
        # instruction set, which OPENBLAS_CORETYPE selects.
        forced = suitable_blas_core()
        if forced and 'OPENBLAS_CORETYPE' not in os.environ and gemm_runs[0]['core'] != forced:
            gemm_runs.append(run_child(['--gemm'], dict(env, OPENBLAS_CORETYPE=forced)))
    gemm = max(r['gflops'] for r in gemm_runs)
    print()
    print('OMP_NUM_THREADS=%d; numpy fp32 GEMM (2048^3): %s' % (args.threads, '; '.join(
        '%.0f GFLOP/s (OpenBLAS kernel %s%s)' % (r['gflops'], r['core'],
                                               ', forced' if k else '')
        for k, r in enumerate(gemm_runs))))
    print('%-16s %-12s %8s %10s %7s %8s %10s %7s %12s' % (
        'task', 'side', 'this s', '%s s' % label[:8], 'ratio', 'this GB', '%s GB' % label[:7],
        'ratio', 'conv GFLOP/s'))
    for task in args.tasks:
        theirs = results[task, label]
        t_theirs = statistics.median(r['seconds'] for r in theirs)
        m_theirs = statistics.median(r['peak_rss_gb'] for r in theirs)
        flops = next((r['conv_gflop'] for _, _, name in sides for r in results[task, name]
                      if r['conv_gflop']), None)
        for _, _, name in sides[:-1]:
            mine = results[task, name]
            if not mine:
                continue
            t_mine = statistics.median(r['seconds'] for r in mine)
            m_mine = statistics.median(r['peak_rss_gb'] for r in mine)
            rate = ('%5.0f (%2.0f%%)' % (flops / t_mine, 100 * flops / t_mine / gemm)
                    if flops else '')
            print('%-16s %-12s %8.3f %10.3f %7.2f %8.2f %10.2f %7.2f %s' % (
                task, 'mxnet' if name == 'this' else name, t_mine, t_theirs, t_mine / t_theirs,
                m_mine, m_theirs, m_mine / m_theirs, rate))


if __name__ == '__main__':
    main()
