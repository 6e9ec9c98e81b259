"""Video prediction: pairs per second and peak memory against video length, and the single-pair rate.

    python bench/bench_video.py [--network MaskFlownet_S] [--lengths 5 17] [--batch 2] [--threads N]

A video of each length is made from the bundled 436 x 1024 Sintel frames (alternating, each
frame shifted a few pixels so consecutive pairs differ) and turned into a flow video by
``engine.predict.predict_video`` in a fresh process, as ``predict_new_data.py`` does; the
single-pair rate is ``Pipeline.predict_pair`` on one pair after a warm-up. Between consecutive
lengths it also prints the marginal rate (extra pairs over extra seconds), the streaming rate
without the start that every video pays once. Streaming should keep the peak memory flat in
the video's length, and batching pairs should not lose speed.
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
FRAMES = REPO / 'tests' / 'data' / 'datasets' / 'sintel' / 'training' / 'clean' / 'alley_1'


def frames():
    import cv2
    return [cv2.imread(str(FRAMES / name)) for name in ('frame_0002.png', 'frame_0003.png')]


def make_video(path, length):
    import numpy as np
    sys.path.insert(0, str(REPO))
    from reader.video import StreamingVideoWriter
    pair = frames()
    height, width = pair[0].shape[:2]
    with StreamingVideoWriter(str(path), (width, height), 24) as writer:
        for k in range(length):
            writer.write(np.roll(pair[k % 2], 2 * k, axis=1)[..., ::-1])


def child(kind, network, length, batch):
    sys.path.insert(0, str(REPO))
    from common.devices import prepare_process
    prepare_process()   # as the command-line tools do
    import mxnet as mx
    from common.config import Config
    from network.pipeline import Pipeline
    from engine.predict import predict_video
    pipe = Pipeline(Config({'network': {'class': network}}), [mx.cpu()])
    if kind == 'pair':
        img1, img2 = (f[..., ::-1] for f in frames())
        pipe.predict_pair(img1, img2)   # warm-up
        start = time.perf_counter()
        for _ in range(length):
            pipe.predict_pair(img1, img2)
        seconds, pairs = time.perf_counter() - start, length
    else:
        with tempfile.TemporaryDirectory() as tmp:
            source = Path(tmp) / 'in.mp4'
            make_video(source, length)
            start = time.perf_counter()
            pairs = predict_video(pipe, source, Path(tmp) / 'out.mp4', batch=batch)
            seconds = time.perf_counter() - start
    return {'pairs': pairs, 'pairs_per_s': pairs / seconds,
            'peak_rss_gb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--network', default='MaskFlownet_S')
    parser.add_argument('--lengths', type=int, nargs='+', default=[5, 17], help='frames per video')
    sys.path.insert(0, str(REPO))
    from common.options import DEFAULT_VIDEO_BATCH
    parser.add_argument('--batch', type=int, default=DEFAULT_VIDEO_BATCH['cpu'],
                        help="pairs per forward pass (default %d, the CLI's default on the CPU)"
                             % DEFAULT_VIDEO_BATCH['cpu'])
    parser.add_argument('--threads', type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument('--child', nargs=2, metavar=('KIND', 'LENGTH'), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, length = args.child
        print(json.dumps(child(kind, args.network, int(length), args.batch)))
        return
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    runs = [('pair', 3)] + [('video', n) for n in args.lengths]
    print('%s, OMP_NUM_THREADS=%d, batch %d' % (args.network, args.threads, args.batch))
    print('%-24s %8s %10s %12s' % ('run', 'pairs', 'pairs/s', 'peak RSS GB'))
    videos = []   # (pairs, seconds)
    for kind, length in runs:
        out = subprocess.run([sys.executable, __file__, '--child', kind, str(length), '--network',
                              args.network, '--batch', str(args.batch)],
                             capture_output=True, text=True, env=env)
        if out.returncode:
            sys.exit('bench/bench_video.py: %s %d failed:\n%s' % (kind, length, out.stderr[-3000:]))
        r = json.loads(out.stdout.strip().splitlines()[-1])
        label = 'single pairs' if kind == 'pair' else 'video of %d frames' % length
        print('%-24s %8d %10.3f %12.2f' % (label, r['pairs'], r['pairs_per_s'], r['peak_rss_gb']))
        if kind == 'video':
            videos.append((r['pairs'], r['pairs'] / r['pairs_per_s']))
    # Each video's time includes a start (graph, memory plan, first batch) that the single
    # pairs' warm-up leaves out; the extra pairs of a longer video over the extra time are
    # the streaming rate without it.
    for (pairs1, seconds1), (pairs2, seconds2) in zip(videos, videos[1:]):
        if pairs2 > pairs1 and seconds2 > seconds1:
            print('%-24s %8d %10.3f' % ('pairs %d-%d, marginal' % (pairs1 + 1, pairs2),
                                        pairs2 - pairs1, (pairs2 - pairs1) / (seconds2 - seconds1)))


if __name__ == '__main__':
    main()
