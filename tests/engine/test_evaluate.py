"""engine/evaluate.py: validation during training and --valid's metrics, checked with
independent numpy."""
import numpy as np
import pytest

from engine.evaluate import validate_checkpoint, validate_sets, validation_lines
from reader import chairs, flowio, sintel
from reader.sample import load_occlusion, load_sample
from tests.helpers import SAMPLE, FakePipe, logged, numpy_metrics


@pytest.mark.slow
def test_validate_sets_batches_frames_of_one_size_and_skips_empty_sets(s_pipe):
    """Validation during training: a chunk of two pairs of different sizes runs as two batches."""
    chairs_sample, = chairs.list_samples(SAMPLE / 'FlyingChairs_release', 'val')
    sintel_sample, = sintel.list_samples(SAMPLE / 'MPI-Sintel-complete', 'training', passes=('clean',))
    results = validate_sets(s_pipe, {'mixed': [chairs_sample, sintel_sample], 'empty': []},
                            batch_size=2)
    assert list(results) == ['mixed']
    expected, errors, weights = [], [], []
    for sample in (chairs_sample, sintel_sample):
        ex = load_sample(sample)
        flow = s_pipe.predict_pair(ex.img1, ex.img2)[0]
        expected.append(numpy_metrics(flow, ex.flow, ex.mask)[0])
        errors.append(np.sqrt(((flow.astype(np.float64) - ex.flow) ** 2).sum(-1)).ravel())
        weights.append(np.ones(errors[-1].size) if ex.mask is None else ex.mask.ravel() / 255)
    mixed = results['mixed']
    assert mixed['epe'] == pytest.approx(np.mean(expected), rel=1e-4)
    # The pooled metrics of the same predictions: every valid pixel of both samples counts once
    # (Sintel's invalid/ marks 80 of the sample's pixels).
    errors, weights = np.concatenate(errors), np.concatenate(weights)
    assert weights.sum() == errors.size - 80
    assert mixed['epe_all'] == pytest.approx((errors * weights).sum() / weights.sum(), rel=1e-4)
    assert mixed['above3px'] == pytest.approx(((errors > 3) * weights).sum() / weights.sum(),
                                              abs=1e-4)
    # Occlusion ground truth: the Sintel sample's occlusions/ only, so its pixels only.
    occluded = load_occlusion(sintel_sample).ravel()
    sintel_errors, sintel_weights = errors[-len(occluded):], weights[-len(occluded):]
    for name, part in (('epe_noc', ~occluded), ('epe_occ', occluded)):
        inside = sintel_weights * part
        assert mixed[name] == pytest.approx((sintel_errors * inside).sum() / inside.sum(), rel=1e-4)


def test_validation_lines_are_the_originals_line_then_one_line_of_pooled_metrics_per_set():
    results = {'chairs': {'epe': 1.5, 'epe_all': 1.25, 'above1px': 0.5},
               'sintel.clean': {'epe': 2.0}}
    assert validation_lines(7, results) == [
        'steps=7, chairs=1.5, sintel.clean=2.0',
        'steps=7, chairs:epe_all=1.25, chairs:above1px=0.5']


class ListLog:
    def __init__(self):
        self.lines = []

    def log(self, line):
        self.lines.append(line)


def test_valid_reports_the_per_image_mean_fl_and_the_pooled_fl_all(tmp_path, monkeypatch, s_pipe):
    """Two KITTI pairs whose ground truth is the prediction plus a 10 px error on known pixels:
    A has 64 x 128 valid pixels, the top 16 rows wrong (Fl 1/4); B has an 8 x 8 valid block,
    all wrong (Fl 1). Per-image mean (1/4 + 1) / 2; pooled (2048 + 64) / (8192 + 64)."""
    root = tmp_path / 'kitti15' / 'training'
    (root / 'image_2').mkdir(parents=True)
    (root / 'flow_occ').mkdir()
    src = SAMPLE / 'data_scene_flow' / 'training' / 'image_2'
    frames = [flowio.read_image(src / n)[200:264, 500:628]
              for n in ('000000_10.png', '000000_11.png')]
    flow = s_pipe.predict_pair(*frames, resize=(64, 128))[0]
    assert np.abs(flow).max() < 100   # so a 10 px error is > 5 % of |flow|: an outlier
    gt_a, valid_a = flow.copy(), np.ones((64, 128), bool)
    gt_a[:16, :, 0] += 10
    gt_b, valid_b = flow + np.float32([10, 0]), np.zeros((64, 128), bool)
    valid_b[30:38, 60:68] = True
    for index, (gt, valid) in enumerate([(gt_a, valid_a), (gt_b, valid_b)]):
        for k, frame in enumerate(frames):
            flowio.write_image(root / 'image_2' / ('%06d_1%d.png' % (index, k)), frame[..., ::-1])
        flowio.write_kitti_flow_png(root / 'flow_occ' / ('%06d_10.png' % index), gt, valid)
    roots_file = tmp_path / 'roots.yaml'
    roots_file.write_text('kitti2015: %s\n' % (tmp_path / 'kitti15'))
    monkeypatch.setenv('MASKFLOWNET_DATASETS', str(roots_file))
    for var in ('MASKFLOWNET_SINTEL', 'MASKFLOWNET_CHAIRS', 'MASKFLOWNET_KITTI2012'):
        monkeypatch.delenv(var, raising=False)

    log = ListLog()
    report = validate_checkpoint(s_pipe, log, 7, resize=(64, 128), progress=False)
    assert logged(log.lines, 'kitti.2015:kitti') == pytest.approx((1 / 4 + 1) / 2, abs=1e-6)
    assert logged(log.lines, 'kitti.2015:fl_all') == pytest.approx(2112 / 8256, abs=1e-6)
    assert [name for name, value, _ in report if value is not None][:3] == [
        'kitti.2015:epe', 'kitti.2015:kitti', 'kitti.2015:fl_all']
    assert all(line.startswith('steps=7, ') for line in log.lines)


def test_no_progress_bar_when_standard_error_is_not_a_terminal(capsys):
    from engine.evaluate import stream_runs
    from reader import sintel
    samples = sintel.list_samples(SAMPLE / 'MPI-Sintel-complete', 'training')
    seen = []
    stream_runs(FakePipe(), samples, 1, lambda part, run: seen.extend(part), 'sintel')
    assert len(seen) == len(samples) and capsys.readouterr().err == ''
