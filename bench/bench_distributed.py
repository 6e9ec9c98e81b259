"""Distributed training benchmark: steps per second with 1 and 2 workers of a local job.

    python bench/bench_distributed.py [--workers 1 2] [--steps 6] [--kvstore dist_sync]

For each worker count W, ``launch.py -n W -s 1 --launcher local`` runs MaskFlownet-S on the
bundled FlyingChairs pair (128 x 192 crops, the chairs augmentation), one sample per worker and
step, so the batch of a step is W samples. A single process without a kvstore is the baseline.
Worker 0 times the steps after the warm-up ones. On a machine with fewer cores than processes
the figures measure the plumbing (gradient exchange through the servers, the data split), not
the speed-up that several machines or GPUs give.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WARMUP_STEPS = 2   # graph building and oneDNN primitive creation make the first steps slow


def worker(out_path, steps, kvstore):
    """One process of the job (or the baseline): train ``steps`` steps, worker 0 writes times."""
    sys.path.insert(0, str(REPO))
    import mxnet as mx   # servers and the scheduler run their loop inside this import
    from network.augmentation import make_augmentations
    from common.config import Config
    from network.pipeline import Pipeline
    from engine.distributed import open_kvstore
    from engine.train import make_stream
    from engine.trainer import FlowTrainer
    from reader.mixes import shrink_for_debug, training_data
    from reader.roots import Roots, SAMPLE_ROOTS_FILE

    kv, workers = open_kvstore(kvstore)
    config = Config({'dataset': 'chairs', 'orig_shape': [128, 192], 'target_shape': [128, 192]})
    data = shrink_for_debug(training_data(config, 'MaskFlownet_S',
                                          Roots(SAMPLE_ROOTS_FILE, environment=False)), workers.count)
    mx.random.seed(0)
    pipe = Pipeline(Config({'network': {'class': 'MaskFlownet_S'}}), [mx.cpu()])
    trainer = FlowTrainer(pipe, [[10 ** 6, 1e-4]], kvstore=kv, workers=workers)
    geo_aug, color_aug = make_augmentations(data.dataset, data.target_shape, data.orig_shape, 1)
    times = []
    with make_stream(data, 0, workers) as stream:
        for step in range(1, steps + 1):
            trainer.set_learning_rate(step)
            batch = next(stream)
            start = time.perf_counter()
            trainer.train_batch(batch.img1, batch.img2, batch.flow, batch.mask, geo_aug, color_aug)
            times.append(time.perf_counter() - start)
    if workers.lead:
        Path(out_path).write_text(json.dumps(times))


def measure(workers, steps, kvstore):
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / 'times.json'
        command = [sys.executable, __file__, '--worker', str(out), '--steps', str(steps)]
        if workers:
            command = ([sys.executable, str(REPO / 'launch.py'), '-n', str(workers), '-s', '1',
                        '--launcher', 'local'] + command + ['--kvstore', kvstore])
        env = dict(os.environ)
        env.setdefault('OMP_NUM_THREADS', str(max(1, len(os.sched_getaffinity(0)) // max(workers, 1))))
        started = time.perf_counter()
        subprocess.run(command, check=True, cwd=folder, env=env, timeout=1200,
                       stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - started
        times = json.loads(out.read_text())[WARMUP_STEPS:]
    per_step = sum(times) / len(times)
    samples = max(workers, 1)
    return {'workers': workers or 'none (one process)', 'kvstore': kvstore if workers else '-',
            'samples_per_step': samples, 'steps_per_s': round(1 / per_step, 3),
            'samples_per_s': round(samples / per_step, 3), 'job_wall_s': round(wall, 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--workers', type=int, nargs='+', default=[1, 2])
    parser.add_argument('--steps', type=int, default=6)
    parser.add_argument('--kvstore', default='dist_sync')
    parser.add_argument('--worker', default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.steps, args.kvstore if 'DMLC_ROLE' in os.environ else 'device')
    for count in [0] + args.workers:
        print(json.dumps(measure(count, args.steps, args.kvstore)), flush=True)


if __name__ == '__main__':
    main()
