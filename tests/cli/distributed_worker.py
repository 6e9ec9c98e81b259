"""One process of tests/cli/test_launch.py's equivalence job (run by launch.py).

    python tests/cli/distributed_worker.py ROOTS_FILE OUT_DIR SEED

A worker trains three dist_sync steps on its part of each batch of the small chairs data, with
the network-side augmentation off, as ``engine.train`` does it (same seeding, same stream,
same trainer); worker 0 then saves the weights. Every worker also saves its first draw of the
network-side augmentation. Servers and the scheduler run their loop inside ``import mxnet``.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np
import mxnet as mx

from network.augmentation import make_augmentations
from common.config import Config
from network.pipeline import Pipeline
from engine.distributed import augmentation_seed, open_kvstore
from engine.train import make_stream
from engine.trainer import FlowTrainer
from reader.mixes import shrink_for_debug, training_data
from reader.roots import Roots

SCHEDULE = [[100, 1e-4]]
STEPS = 3


def small_chairs(roots_file, devices):
    """The bundled FlyingChairs pair in 128 x 192 crops (fed to the network as they are: the
    network-side augmentation is off), one sample per device and batch."""
    config = Config({'dataset': 'chairs', 'orig_shape': [128, 192], 'target_shape': [128, 192]})
    return shrink_for_debug(training_data(config, 'MaskFlownet_S', Roots(roots_file)), devices)


def train_steps(pipe, trainer, data, seed, workers):
    with make_stream(data, seed, workers) as stream:
        for step in range(1, STEPS + 1):
            trainer.set_learning_rate(step)
            batch = next(stream)
            trainer.train_batch(batch.img1, batch.img2, batch.flow, batch.mask)


def weights(pipe):
    return {k: p.data().asnumpy() for k, p in pipe.network._collect_params_with_prefix().items()}


def main(roots_file, out_dir, seed):
    seed = int(seed)
    kvstore, workers = open_kvstore('dist_sync')
    data = small_chairs(roots_file, workers.count)
    mx.random.seed(seed)
    pipe = Pipeline(Config({'network': {'class': 'MaskFlownet_S'}}), [mx.cpu()])
    trainer = FlowTrainer(pipe, SCHEDULE, kvstore=kvstore, workers=workers)
    train_steps(pipe, trainer, data, seed, workers)
    if workers.lead:
        np.savez(Path(out_dir) / 'weights.npz', **weights(pipe))
    mx.random.seed(augmentation_seed(seed, workers.rank, 1))
    geo_aug, _ = make_augmentations(data.dataset, data.target_shape, data.orig_shape, 1)
    draw = geo_aug.sample(mx.nd)
    np.savez(Path(out_dir) / ('augmentation_%d.npz' % workers.rank),
             **{k: v.asnumpy() for k, v in draw._asdict().items() if v is not None})


if __name__ == '__main__':
    main(*sys.argv[1:])
