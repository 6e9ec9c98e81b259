"""Training benchmark: steps per second and peak memory as the dataset grows.

    python bench/bench_training.py [--sizes 1 16 256] [--steps 4] [--batch 2] [-g 0]

For each dataset size N, a FlyingChairs-format dataset of N samples is laid out in a temporary
folder (links to the bundled real sample, so it costs no disk) and MaskFlownet-S trains on it
with the chairs schedule, crops and augmentation (config/chairs.yaml: 384 x 512 crops, trained
at 320 x 448), in a fresh process. Because samples are read
on demand, peak memory should not grow with N; the original loaded every sample into RAM.

It also prints how much the resident memory grew per step over the second half of the timed
steps (the first ones still settle): a long run must not creep (``--sizes 16 --steps 60``
shows it; it should stay near 0 MB a step).
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / 'sample_data' / 'FlyingChairs_release' / 'data'
WARMUP_STEPS = 2   # graph building and oneDNN primitive creation make the first steps slow


def make_dataset(folder, size):
    data = folder / 'data'
    data.mkdir(parents=True)
    for i in range(1, size + 2):   # the last sample is the validation one
        for suffix in ('img1.ppm', 'img2.ppm', 'flow.flo'):
            os.symlink(SAMPLE / ('00001_' + suffix), data / ('%05d_%s' % (i, suffix)))
    (folder / 'FlyingChairs_train_val.txt').write_text('1\n' * size + '2\n')


def chairs_config():
    """config/chairs.yaml, the dataset config of step 1: its target_shape (320 x 448) is the
    size the network trains at. (A bare ``{'dataset': 'chairs'}`` falls back to the crop size,
    384 x 512, 1.37 times the pixels: the figures this benchmark printed before it read the file
    were taken at that size.)"""
    sys.path.insert(0, str(REPO))
    from common.config import load_config
    return load_config('chairs.yaml', 'dataset')


def measure(size, steps, batch, gpu):
    sys.path.insert(0, str(REPO))
    from common.devices import prepare_process
    prepare_process()
    from common.config import Config
    from common.devices import parse_devices
    from network.pipeline import Pipeline
    from engine.train import make_stream
    from reader.mixes import training_data
    from engine.trainer import FlowTrainer
    from network.augmentation import make_augmentations

    with tempfile.TemporaryDirectory() as tmp:
        make_dataset(Path(tmp), size)
        os.environ['MASKFLOWNET_CHAIRS'] = tmp
        config = Config({'network': {'class': 'MaskFlownet_S'}})
        data = training_data(chairs_config(), 'MaskFlownet_S')
        data.mix = [(samples, batch) for samples, _ in data.mix]
        ctx = parse_devices(gpu)
        pipe = Pipeline(config, ctx)
        trainer = FlowTrainer(pipe, [[10 ** 9, 1e-4]])
        trainer.set_learning_rate(1)
        geo, color = make_augmentations('chairs', data.target_shape, data.orig_shape, batch // len(ctx))
        times = []
        with make_stream(data, seed=0) as stream:
            for k in range(steps + WARMUP_STEPS):
                if k == WARMUP_STEPS + steps // 2:
                    settled_rss = resident_bytes()
                start = time.perf_counter()
                img1, img2, flow = next(stream)[:3]
                trainer.train_batch(img1, img2, flow, geo_aug=geo, color_aug=color)
                if k >= WARMUP_STEPS:
                    times.append(time.perf_counter() - start)
        growth = (resident_bytes() - settled_rss) / (steps - steps // 2)
    return {'samples': size, 'batch': batch, 'steps_per_s': len(times) / sum(times),
            'peak_rss_gb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2,
            'growth_mb_per_step': growth / 2 ** 20}


def resident_bytes():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--sizes', type=int, nargs='+', default=[1, 16, 256])
    parser.add_argument('--steps', type=int, default=4)
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('-g', '--gpu_device', default='')
    parser.add_argument('--child', type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(measure(args.child, args.steps, args.batch, args.gpu_device)))
        return
    print('%10s %6s %10s %12s %16s' % ('samples', 'batch', 'steps/s', 'peak RSS GB',
                                       'growth MB/step'))
    for size in args.sizes:
        out = subprocess.run([sys.executable, __file__, '--child', str(size), '--steps', str(args.steps),
                              '--batch', str(args.batch), '-g', args.gpu_device],
                             capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print('%10d %6d %10.3f %12.2f %16.1f' % (r['samples'], r['batch'], r['steps_per_s'],
                                                 r['peak_rss_gb'], r['growth_mb_per_step']))


if __name__ == '__main__':
    main()
