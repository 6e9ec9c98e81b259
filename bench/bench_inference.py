"""Inference benchmark: seconds per pair and peak memory at Sintel resolution (436 x 1024).

    python bench/bench_inference.py [--networks MaskFlownet_S MaskFlownet] [-g 0] [--runs 5]

Each network runs in its own process so that peak memory is its own. Like the timing baseline
of the original code: one 436x1024 pair (resized internally to 448x1024), one warm-up run,
then the median of ``--runs``. Weights are random: speed does not depend on them.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / 'tests' / 'data' / 'datasets' / 'sintel' / 'training' / 'clean' / 'alley_1'


def measure(network, gpu, runs):
    sys.path.insert(0, str(REPO))
    from common.devices import prepare_process
    prepare_process()   # as the command-line tools do
    from common.config import Config
    from common.devices import parse_devices
    from network.pipeline import Pipeline
    from reader.flowio import read_image_rgb
    import mxnet as mx

    img1 = read_image_rgb(SAMPLE / 'frame_0002.png')
    img2 = read_image_rgb(SAMPLE / 'frame_0003.png')
    pipe = Pipeline(Config({'network': {'class': network}}), parse_devices(gpu))
    times = []
    for k in range(runs + 1):
        start = time.perf_counter()
        flow, _, _ = pipe.predict_pair(img1, img2)   # asnumpy() inside waits for the device
        mx.nd.waitall()
        if k:   # the first run is the warm-up (graph building, allocation)
            times.append(time.perf_counter() - start)
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
    return {'network': network, 'size': list(img1.shape[:2]), 'seconds_per_pair': statistics.median(times),
            'min_seconds': min(times), 'peak_rss_gb': peak_gb,
            'device': gpu and 'gpu(%s)' % gpu or 'cpu',
            'omp_threads': os.environ.get('OMP_NUM_THREADS', 'default'),
            'mkldnn': mx.runtime.Features().is_enabled('MKLDNN')}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--networks', nargs='+', default=['MaskFlownet_S', 'MaskFlownet'])
    parser.add_argument('-g', '--gpu_device', default='')
    parser.add_argument('--runs', type=int, default=5)
    parser.add_argument('--child', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.gpu_device, args.runs)))
        return
    print('%-14s %-10s %12s %10s %14s  %s' % ('network', 'size', 's/pair (med)', 'min s', 'peak RSS GB', 'device'))
    for network in args.networks:
        out = subprocess.run([sys.executable, __file__, '--child', network, '-g', args.gpu_device,
                              '--runs', str(args.runs)], capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print('%-14s %-10s %12.3f %10.3f %14.2f  %s (OMP threads %s, MKLDNN %s)' % (
            r['network'], '%dx%d' % tuple(r['size']), r['seconds_per_pair'], r['min_seconds'],
            r['peak_rss_gb'], r['device'], r['omp_threads'], r['mkldnn']))


if __name__ == '__main__':
    main()
