"""In-process interleaved A/B of the flow and mask predictions by taps (layers._conv3x3_by_taps)
against the plain convolution they replace in the inference graph.

    python bench/ab_by_taps.py [--rounds 30] [--network-rounds 8]

Layers: a 1x1 convolution that leaves channel-last features, as the decoders do, then the
2-channel prediction at the finest two decoder sizes of a 436 x 1024 Sintel pair; each figure
is the median time of the variant minus that of the features alone. Network: a whole MaskFlownet
pair (``Pipeline.predict_pair``) with and without predictions by taps, same random weights.
Both sides alternate in one process; prints medians and the ratio by taps / plain.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / 'tests' / 'data' / 'datasets' / 'sintel' / 'training' / 'clean' / 'alley_1'
LAYER_SIZES = ((579, 112, 256), (611, 56, 128))   # (dense channels, H, W) at levels 2 and 3


def interleaved(runs, rounds):
    """Median seconds of each zero-argument callable in ``runs``, alternating their order."""
    names = list(runs)
    times = {name: [] for name in names}
    for r in range(rounds):
        for name in (names if r % 2 else names[::-1]):
            start = time.perf_counter()
            runs[name]()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def layer_ab(rounds):
    import mxnet as mx
    from mxnet import gluon
    from network.layers import predict_conv

    class Prediction(gluon.HybridBlock):
        def __init__(self, channels, variant):
            super().__init__()
            self.variant = variant
            with self.name_scope():
                self.features = gluon.nn.Conv2D(channels, 1, in_channels=64)
                self.pred = predict_conv(2, channels, by_taps=variant == 'taps')

        def hybrid_forward(self, F, x):
            features = self.features(x)
            if self.variant == 'features':
                return F.slice_axis(features, axis=1, begin=0, end=2)
            return self.pred(features)

    for channels, height, width in LAYER_SIZES:
        x = mx.nd.random.uniform(shape=(1, 64, height, width))
        blocks = {}
        for variant in ('features', 'plain', 'taps'):
            block = blocks[variant] = Prediction(channels, variant)
            block.initialize()
            block.hybridize(static_alloc=True, static_shape=True)
            block(x).wait_to_read()
        medians = interleaved({v: (lambda b=b: b(x).wait_to_read()) for v, b in blocks.items()},
                              rounds)
        plain, taps = (1e3 * (medians[v] - medians['features']) for v in ('plain', 'taps'))
        print('%d -> 2 at %d x %d: plain %.2f ms, by taps %.2f ms, ratio %.2f'
              % (channels, height, width, plain, taps, taps / plain))


def network_ab(rounds):
    import mxnet as mx
    from network import layers, models
    from common.config import Config
    from network.pipeline import Pipeline
    from reader.flowio import read_image_rgb

    img1, img2 = (read_image_rgb(SAMPLE / name) for name in ('frame_0002.png', 'frame_0003.png'))
    pipes = {}
    for variant in ('plain', 'taps'):
        if variant == 'plain':   # the inference graph built without predictions by taps
            models.predict_conv = lambda *args, by_taps=False, **kwargs: layers.predict_conv(
                *args, **kwargs)
        mx.random.seed(0)
        pipes[variant] = Pipeline(Config({'network': {'class': 'MaskFlownet'}}), [mx.cpu()])
        models.predict_conv = layers.predict_conv
        for _ in range(2):   # build and plan the graph while the variant's layers are in place
            pipes[variant].predict_pair(img1, img2)
    medians = interleaved({v: (lambda p=p: p.predict_pair(img1, img2)) for v, p in pipes.items()},
                          rounds)
    print('MaskFlownet pair: plain %.3f s, by taps %.3f s, ratio %.3f'
          % (medians['plain'], medians['taps'], medians['taps'] / medians['plain']))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--rounds', type=int, default=30, help='layer A/B rounds')
    parser.add_argument('--network-rounds', type=int, default=8, help='whole-network A/B rounds')
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from common.devices import prepare_process
    prepare_process()   # as the command-line tools do
    layer_ab(args.rounds)
    if args.network_rounds:
        network_ab(args.network_rounds)


if __name__ == '__main__':
    main()
