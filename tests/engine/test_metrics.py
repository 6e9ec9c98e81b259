"""engine/metrics.py: the pixel-pooled metrics, against values computed by hand on small arrays,
and through engine/evaluate.py (--valid) against numpy on the network's own predictions."""
import re
from pathlib import Path

import cv2
import mxnet as mx
import numpy as np
import pytest

from common.config import Config
from engine.evaluate import BENCHMARKS, KITTI_METRICS, evaluate_samples, validate_checkpoint
from engine.metrics import PIXEL_METRICS, PooledMetrics, pixel_sums
from network.pipeline import Pipeline
from reader import flowio, sintel
from reader.sample import load_occlusion, load_sample

SINTEL = Path(__file__).resolve().parent.parent / 'data' / 'datasets' / 'sintel'

# One 2 x 3 image, flows in (x, y) px. The errors are 3-4-5 triangles and axis steps:
#   err = [[0, 0.5, 2], [5, 10, 50]]
LABEL = np.array([[[1, 0], [0, 12], [30, 40]],
                  [[0, 0], [-50, 0], [6, 8]]], np.float32)   # |gt| = [[1, 12, 50], [0, 50, 10]]
ERROR = np.array([[[0, 0], [0.5, 0], [0, 2]],
                  [[3, 4], [6, 8], [30, 40]]], np.float32)
WEIGHT = np.array([[1, 1, 1], [1, 1, 0]], np.float32)        # the 50 px error is not valid
OCCLUDED = np.array([[False, True, False], [True, False, False]])


def test_each_metric_of_one_image_by_hand():
    sums = pixel_sums(LABEL + ERROR, LABEL, WEIGHT, OCCLUDED)
    value = {metric: numerator / denominator for metric, (numerator, denominator) in sums.items()}
    # valid errors: 0, 0.5, 2, 5, 10 (5 pixels)
    assert value['epe_all'] == pytest.approx(17.5 / 5)
    assert value['above1px'] == pytest.approx(3 / 5)     # 2, 5, 10
    assert value['above3px'] == pytest.approx(2 / 5)     # 5, 10
    assert value['above5px'] == pytest.approx(1 / 5)     # 10 (5 is not above 5)
    # speed bins by |gt| of the valid pixels: 1, 12, 50, 0, 50
    assert value['epe_s0-10'] == pytest.approx((0 + 5) / 2)    # |gt| 1 and 0 (10 is in s10-40)
    assert value['epe_s10-40'] == pytest.approx(0.5 / 1)       # |gt| 12
    assert value['epe_s40+'] == pytest.approx((2 + 10) / 2)    # |gt| 50, 50
    assert value['epe_noc'] == pytest.approx((0 + 2 + 10) / 3)
    assert value['epe_occ'] == pytest.approx((0.5 + 5) / 2)
    assert set(value) == set(PIXEL_METRICS)


def test_fractional_weights_weigh_pixels():
    # A resized sparse ground truth: a pixel half valid counts half.
    weight = np.array([[0.5, 1, 0], [0, 0, 0]], np.float32)
    sums = pixel_sums(LABEL + ERROR, LABEL, weight)
    assert sums['epe_all'] == pytest.approx((0.5 * 0 + 0.5, 1.5))
    assert sums['above3px'] == (0, 1.5)
    assert 'epe_noc' not in sums and 'epe_occ' not in sums   # no occlusion ground truth


def test_pooling_counts_pixels_not_images():
    metrics = PooledMetrics()
    metrics.add(LABEL + ERROR, LABEL, WEIGHT, OCCLUDED)                    # 5 valid px, EPE 3.5
    one = np.ones((1, 1), np.float32)
    metrics.add(np.array([[[2, 0]]], np.float32), np.zeros((1, 1, 2), np.float32), one)   # 1 px, 2
    values = metrics.values()
    assert values['epe_all'] == pytest.approx((17.5 + 2) / 6)   # not (3.5 + 2) / 2
    assert values['above1px'] == pytest.approx(4 / 6)
    assert values['epe_s0-10'] == pytest.approx((0 + 5 + 2) / 3)
    # occluded or not: only the first image says, so only its pixels count
    assert values['epe_noc'] == pytest.approx(12 / 3) and values['epe_occ'] == pytest.approx(2.75)


def test_empty_bins_are_nan_and_occlusion_metrics_need_ground_truth():
    metrics = PooledMetrics()
    metrics.add(np.zeros((1, 2, 2), np.float32), np.zeros((1, 2, 2), np.float32),
                np.ones((1, 2), np.float32))
    values = metrics.values()
    assert values['epe_all'] == 0 and values['above1px'] == 0
    assert np.isnan(values['epe_s40+']) and np.isnan(values['epe_s10-40'])
    assert 'epe_noc' not in values and 'epe_occ' not in values
    assert list(values) == [m for m in PIXEL_METRICS if m not in ('epe_noc', 'epe_occ')]
    with pytest.raises(ValueError, match='unknown'):
        PooledMetrics(['epe_everything'])


class KnownFlowPipe:
    """labelled_batches as the Pipeline's, but the 'prediction' is label + ERROR: the metrics
    of evaluate_samples can then be checked by hand, without a network."""
    ctx = [mx.cpu()]

    def labelled_batches(self, img1s, img2s, labels, masks, batch_size, resize):
        for label, mask in zip(labels, masks):
            yx = mx.nd.array(label[None].transpose(0, 3, 1, 2)[:, ::-1].copy())
            flow = yx + mx.nd.array(ERROR[None].transpose(0, 3, 1, 2)[:, ::-1].copy())
            weight = mx.nd.array(mask[None].transpose(0, 3, 1, 2) / 255.0)
            err = mx.nd.sqrt(mx.nd.sum(mx.nd.square(flow - yx), axis=1) + 1e-8) * weight[:, 0]
            yield flow, yx, weight, err.sum(axis=(1, 2)) / weight.sum(axis=(1, 2, 3))


def test_valid_keeps_the_originals_metrics_and_adds_the_pooled_ones(tmp_path, monkeypatch):
    """Two KITTI-like samples through evaluate_samples: 'epe', 'kitti', 'fl_all' as before,
    then the pooled metrics, from the same pixels."""
    from reader import sample as sample_module
    masks = [WEIGHT[..., None].astype(np.uint8) * 255, np.full((2, 3, 1), 255, np.uint8)]
    examples = [sample_module.Example(np.zeros((2, 3, 3), np.uint8), np.zeros((2, 3, 3), np.uint8),
                                      LABEL, mask) for mask in masks]
    monkeypatch.setattr('engine.evaluate.load_sample', lambda s: examples[s])
    monkeypatch.setattr('engine.evaluate.load_occlusion', lambda s: OCCLUDED if s == 0 else None)
    result = evaluate_samples(KnownFlowPipe(), [0, 1], metrics=KITTI_METRICS + PIXEL_METRICS,
                              progress=False)
    assert list(result) == list(KITTI_METRICS + PIXEL_METRICS)
    # the original's: per-image means (the 1e-8 inside the loss's square root aside)
    assert result['epe'] == pytest.approx((17.5 / 5 + 67.5 / 6) / 2, rel=1e-4)
    # outliers (> 3 px and > 5 % of |gt|): 5 of |gt| 0 and 10 of |gt| 50, and 50 of |gt| 10
    assert result['kitti'] == pytest.approx((2 / 5 + 3 / 6) / 2)
    assert result['fl_all'] == pytest.approx(5 / 11)
    assert result['epe_all'] == pytest.approx((17.5 + 67.5) / 11)
    assert result['above5px'] == pytest.approx(3 / 11)
    assert result['epe_s40+'] == pytest.approx((2 + 10) * 2 / 4)
    assert result['epe_occ'] == pytest.approx(2.75)   # the first sample alone has occlusions


@pytest.fixture(scope='module')
def s_pipe(golden_checkpoint):
    pipe = Pipeline(Config({'network': {'class': 'MaskFlownet_S'}}), keep_graph_memory=False)
    pipe.load(golden_checkpoint('MaskFlownet_S'))
    return pipe


def small_sintel(folder):
    """The bundled Sintel pair cut to 64 x 96, with its flow, invalid and occlusion maps."""
    rows, cols = slice(150, 214), slice(500, 596)
    root = folder / 'sintel'
    for part in ('clean/alley_1', 'final/alley_1', 'flow/alley_1', 'invalid/alley_1',
                 'occlusions/alley_1'):
        (root / 'training' / part).mkdir(parents=True)
    for pass_name in ('clean', 'final'):
        for name in ('frame_0002.png', 'frame_0003.png'):
            source = SINTEL / 'training' / pass_name / 'alley_1' / name
            cv2.imwrite(str(root / 'training' / pass_name / 'alley_1' / name),
                        cv2.imread(str(source))[rows, cols])
    flow = flowio.read_flo(SINTEL / 'training' / 'flow' / 'alley_1' / 'frame_0002.flo')
    flowio.write_flo(root / 'training' / 'flow' / 'alley_1' / 'frame_0002.flo', flow[rows, cols])
    for part in ('invalid', 'occlusions'):
        mask = cv2.imread(str(SINTEL / 'training' / part / 'alley_1' / 'frame_0002.png'),
                          cv2.IMREAD_UNCHANGED)
        cv2.imwrite(str(root / 'training' / part / 'alley_1' / 'frame_0002.png'), mask[rows, cols])
    return root


def numpy_metrics(flow, gt, valid, occluded):
    err = np.sqrt(((flow.astype(np.float64) - gt) ** 2).sum(-1))
    speed = np.sqrt((gt.astype(np.float64) ** 2).sum(-1))
    mean = lambda where: err[where & valid].mean() if (where & valid).any() else float('nan')
    everywhere = np.ones_like(valid)
    return {'epe_all': mean(everywhere), 'above1px': (err[valid] > 1).mean(),
            'above3px': (err[valid] > 3).mean(), 'above5px': (err[valid] > 5).mean(),
            'epe_s0-10': mean(speed < 10), 'epe_s10-40': mean((speed >= 10) & (speed < 40)),
            'epe_s40+': mean(speed >= 40), 'epe_noc': mean(~occluded), 'epe_occ': mean(occluded)}


def test_valid_on_sintel_gives_each_metric_as_numpy_computes_it(tmp_path, monkeypatch, s_pipe):
    root = small_sintel(tmp_path)
    (tmp_path / 'roots.yaml').write_text('sintel: %s\n' % root)
    monkeypatch.setenv('MASKFLOWNET_DATASETS', str(tmp_path / 'roots.yaml'))
    for variable in ('MASKFLOWNET_SINTEL', 'MASKFLOWNET_CHAIRS', 'MASKFLOWNET_KITTI2012',
                     'MASKFLOWNET_KITTI2015'):
        monkeypatch.delenv(variable, raising=False)
    lines = []

    class Log:
        def log(self, line):
            lines.append(line)
    validate_checkpoint(s_pipe, Log(), 9, progress=False)
    values = dict(re.fullmatch(r'steps=9, (\S+)=(\S+)', line).groups() for line in lines)
    assert BENCHMARKS[0].metrics == ('epe',) + PIXEL_METRICS
    for pass_name in ('clean', 'final'):
        sample, = sintel.list_samples(root, 'training', passes=(pass_name,))
        example = load_sample(sample)
        flow = s_pipe.predict_pair(example.img1, example.img2)[0]
        occluded = load_occlusion(sample)
        assert 0 < occluded.mean() < 1
        expected = numpy_metrics(flow, example.flow, example.mask[..., 0] > 0, occluded)
        for metric, value in expected.items():
            got = float(values['sintel.training.%s:%s' % (pass_name, metric)])
            if np.isnan(value):
                assert np.isnan(got), metric
            else:
                assert got == pytest.approx(value, rel=1e-4, abs=1e-6), metric
        assert float(values['sintel.training.%s:epe' % pass_name]) == pytest.approx(
            expected['epe_all'], rel=1e-4)   # one image: the mean over images is the pooled EPE
