"""The GPU check of the onnxruntime backend (docs/onnx.md): on a machine with an NVIDIA GPU and
onnxruntime-gpu installed, both networks at Sintel size through onnxruntime's CUDA provider,
their flow against the CPU provider's, and milliseconds per pair. Under five minutes.

    python bench/gpu_check.py [--gpu 0] [--runs 20] [--networks MaskFlownet_S MaskFlownet]

Random weights (speed and agreement do not depend on them), exported once into a temporary
cache; the Sintel pair of tests/data. Exit status 0 when every network's CUDA flow is within
--tolerance px (default 1e-2: cuDNN may pick TF32 or other summation orders) of the CPU's.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
PAIR = [REPO / 'tests/data/datasets/sintel/training/clean/alley_1/frame_0002.png',
        REPO / 'tests/data/datasets/sintel/training/clean/alley_1/frame_0003.png']


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--gpu', type=int, default=0, help='GPU id (default 0)')
    parser.add_argument('--runs', type=int, default=20, help='timed pairs on the GPU')
    parser.add_argument('--cpu_runs', type=int, default=2, help='timed pairs on the CPU')
    parser.add_argument('--networks', nargs='+', default=['MaskFlownet_S', 'MaskFlownet'])
    parser.add_argument('--tolerance', type=float, default=1e-2, help='px, CUDA against CPU')
    args = parser.parse_args()

    from common.devices import prepare_process
    prepare_process()
    import cv2
    import numpy as np
    import onnxruntime as ort
    print('onnxruntime %s, providers %s' % (ort.__version__, ort.get_available_providers()))
    from common.config import Config
    from engine.onnx_backend import Device, OnnxPipeline, parse_device
    device = parse_device(str(args.gpu))   # one line and exit 2 when the CUDA provider is missing
    img1, img2 = (cv2.imread(str(p)) for p in PAIR)
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        os.environ['MASKFLOWNET_ONNX_CACHE'] = tmp
        for network in args.networks:
            import mxnet as mx
            from network.pipeline import Pipeline
            config = Config({'network': {'class': network}})
            checkpoint = os.path.join(tmp, network + '.params')
            mx.random.seed(0)
            Pipeline(config).save(checkpoint)
            start = time.perf_counter()
            cpu = OnnxPipeline(config, checkpoint, Device('cpu'))
            cpu.session(img1.shape[:2])
            print('%s: exported and loaded in %.1f s' % (network, time.perf_counter() - start))
            gpu = OnnxPipeline(config, checkpoint, device)
            start = time.perf_counter()
            gpu.session(img1.shape[:2])
            print('%s: CUDA session in %.1f s (providers %s)' % (
                network, time.perf_counter() - start,
                gpu.session(img1.shape[:2]).get_providers()))

            def timed(pipe, runs):
                flow = pipe.run(img1, img2)[0]   # warm-up (cuDNN picks its algorithms)
                times = []
                for _ in range(runs):
                    start = time.perf_counter()
                    flow = pipe.run(img1, img2)[0]
                    times.append(time.perf_counter() - start)
                return flow, 1000 * statistics.median(times)

            flow_gpu, ms_gpu = timed(gpu, args.runs)
            flow_cpu, ms_cpu = timed(cpu, args.cpu_runs)
            diff = float(np.abs(flow_gpu - flow_cpu).max())
            ok &= diff <= args.tolerance
            print('%s at 436x1024: CUDA %.1f ms per pair, CPU %.0f ms; max |flow CUDA - CPU| '
                  '%.2e px (max |flow| %.1f px)%s' % (
                      network, ms_gpu, ms_cpu, diff, np.abs(flow_cpu).max(),
                      '' if diff <= args.tolerance else '  ABOVE TOLERANCE'))
    return 0 if ok else 1


if __name__ == '__main__':
    from common.cli import run
    sys.exit(run(main))
