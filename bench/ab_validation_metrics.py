"""In-process interleaved A/B of a validation with and without the pixel-pooled metrics
(engine.metrics) that validation during training computes besides the original's EPE.

    python bench/ab_validation_metrics.py [--rounds 7] [--network MaskFlownet_S]

Both sides validate the bundled Sintel pair (436 x 1024, with occlusion ground truth) with the
same random weights through engine.evaluate.evaluate_samples: A with the original's 'epe'
only, B with 'epe' and every pooled metric (as validate_sets does). They alternate in one
process; prints the median seconds of each and the ratio B / A.
"""
import argparse
import sys
from pathlib import Path

from ab_by_taps import interleaved   # bench/ is the script's folder: on the path

REPO = Path(__file__).resolve().parent.parent


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--rounds', type=int, default=7)
    parser.add_argument('--network', default='MaskFlownet_S', choices=('MaskFlownet_S', 'MaskFlownet'))
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from common import devices
    devices.prepare_process()
    import mxnet as mx
    from common.config import Config
    from engine.evaluate import EPE_METRICS, evaluate_samples
    from network.pipeline import Pipeline
    from reader import sintel
    mx.random.seed(0)
    pipe = Pipeline(Config({'network': {'class': args.network}}), [mx.cpu()])
    samples = sintel.list_samples(REPO / 'sample_data' / 'MPI-Sintel-complete', 'training',
                                  passes=('clean',))
    runs = {'epe only': lambda: evaluate_samples(pipe, samples, progress=False),
            'with pooled': lambda: evaluate_samples(pipe, samples, metrics=EPE_METRICS,
                                                    progress=False)}
    for run in runs.values():   # warm up: graphs built, memory planned
        run()
    medians = interleaved(runs, args.rounds)
    for name, seconds in medians.items():
        print('%-12s %.3f s (median of %d)' % (name, seconds, args.rounds))
    print('ratio with pooled / epe only: %.3f' % (medians['with pooled'] / medians['epe only']))


if __name__ == '__main__':
    main()
