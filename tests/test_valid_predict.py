"""main.py --valid and --predict on the bundled sample data, checked with independent numpy."""
import json
import re
import shutil
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest

import main as main_cli
from common.config import Config
from engine.evaluate import validate_checkpoint, validate_sets
from network.pipeline import Pipeline
from reader import flowio
from reader.sample import load_sample
from reader import chairs, kitti, sintel

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / 'sample_data'


@pytest.fixture(scope='module')
def s_pipe(golden_checkpoint):
    pipe = Pipeline(Config({'network': {'class': 'MaskFlownet_S'}}))
    pipe.load(golden_checkpoint('MaskFlownet_S'))
    return pipe


def numpy_metrics(flow, gt, mask):
    """EPE over the valid pixels and the KITTI Fl outlier share, in plain numpy."""
    valid = mask[..., 0].astype(np.float64) / 255 if mask is not None else np.ones(gt.shape[:2])
    err = np.sqrt(((flow.astype(np.float64) - gt) ** 2).sum(-1) + 1e-8)
    epe = (err * valid).sum() / valid.sum()
    magnitude = np.sqrt((gt.astype(np.float64) ** 2).sum(-1))
    outlier = (err > 3) & (err / (magnitude + 1e-8) > 0.05)
    return epe, (outlier * valid).sum() / valid.sum()


def logged(lines, key):
    values = [float(m.group(1)) for m in (re.search(r'%s=([-0-9.e]+)$' % re.escape(key), l) for l in lines) if m]
    assert len(values) == 1, (key, lines)
    return values[0]


def test_valid_on_the_sample_data_matches_numpy(tmp_path, monkeypatch, golden_checkpoint, s_pipe, capsys):
    monkeypatch.setenv('MASKFLOWNET_DATASETS', str(SAMPLE / 'datasets.yaml'))
    monkeypatch.chdir(tmp_path)
    ckpt = tmp_path / 'abcNov20-1200_1000.params'
    shutil.copy(golden_checkpoint('MaskFlownet_S'), ckpt)
    assert main_cli.main(['MaskFlownet_S.yaml', '--valid', '-c', str(ckpt), '--batch', '1']) == 0
    out = capsys.readouterr().out
    assert re.search(r'kitti\.2012 +not configured \(set MASKFLOWNET_KITTI2012', out)
    log = tmp_path / 'logs' / 'val' / 'abcNov20-1200.val.log'
    lines = [re.sub(r'^\[\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\] ', '', l) for l in log.read_text().splitlines()]
    assert all(l.startswith('steps=1000, ') for l in lines), lines

    for pass_name in ('clean', 'final'):
        sample, = sintel.list_samples(SAMPLE / 'MPI-Sintel-complete', 'training', passes=(pass_name,))
        ex = load_sample(sample)
        flow = s_pipe.predict_pair(ex.img1, ex.img2)[0]
        epe, _ = numpy_metrics(flow, ex.flow, ex.mask)
        assert logged(lines, 'sintel.training.%s:epe' % pass_name) == pytest.approx(epe, rel=1e-4)
    assert not any('training2' in l for l in lines)   # alley_1 is a training1 sequence

    sample, = kitti.list_samples(SAMPLE / 'data_scene_flow', '2015', 'mixed')
    ex = load_sample(sample)
    flow = s_pipe.predict_pair(ex.img1, ex.img2, resize=(512, 1152))[0]
    epe, fl = numpy_metrics(flow, ex.flow, ex.mask)
    assert logged(lines, 'kitti.2015:epe') == pytest.approx(epe, rel=1e-4)
    assert logged(lines, 'kitti.2015:kitti') == pytest.approx(fl, abs=1e-6)
    assert logged(lines, 'kitti.2015:fl_all') == pytest.approx(fl, abs=1e-6)   # one image
    assert 0 < fl < 1

    sample, = chairs.list_samples(SAMPLE / 'FlyingChairs_release', 'val')
    ex = load_sample(sample)
    epe, _ = numpy_metrics(s_pipe.predict_pair(ex.img1, ex.img2)[0], ex.flow, None)
    assert logged(lines, 'chairs:epe') == pytest.approx(epe, rel=1e-4)


def test_validate_sets_batches_frames_of_one_size_and_skips_empty_sets(s_pipe):
    """Validation during training: a chunk of two pairs of different sizes runs as two batches."""
    chairs_sample, = chairs.list_samples(SAMPLE / 'FlyingChairs_release', 'val')
    sintel_sample, = sintel.list_samples(SAMPLE / 'MPI-Sintel-complete', 'training', passes=('clean',))
    results = validate_sets(s_pipe, {'mixed': [chairs_sample, sintel_sample], 'empty': []},
                            batch_size=2)
    assert list(results) == ['mixed']
    expected = []
    for sample in (chairs_sample, sintel_sample):
        ex = load_sample(sample)
        expected.append(numpy_metrics(s_pipe.predict_pair(ex.img1, ex.img2)[0], ex.flow, ex.mask)[0])
    assert results['mixed'] == pytest.approx(np.mean(expected), rel=1e-4)


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


CHECKPOINT_NAME = 'abcNov20-1200_1000.params'
PREDICT = ['MaskFlownet_S.yaml', '--predict', '--occ_mask', '-c']
SMALL = ['--resize', '64,128']
SINTEL_OUT = 'abcNov20-1200_1000_sintel'
KITTI_OUT = 'abcNov20-1200_1000_kitti'


def make_test_layout(folder):
    """Sintel test/ and KITTI testing/ trees made of the real sample frames; the roots file."""
    sintel_root = folder / 'sintel'
    for pass_name in ('clean', 'final'):
        src = SAMPLE / 'MPI-Sintel-complete' / 'training' / pass_name / 'alley_1'
        dst = sintel_root / 'test' / pass_name / 'market_1'
        dst.mkdir(parents=True)
        for k, frame in enumerate(sorted(src.iterdir()), start=1):
            shutil.copy(frame, dst / ('frame_%04d.png' % k))
    kitti_root = folder / 'kitti15'
    (kitti_root / 'testing' / 'image_2').mkdir(parents=True)
    for name in ('000000_10.png', '000000_11.png'):
        shutil.copy(SAMPLE / 'data_scene_flow' / 'training' / 'image_2' / name,
                    kitti_root / 'testing' / 'image_2' / name.replace('000000', '000007'))
    roots = folder / 'roots.yaml'
    roots.write_text('sintel: %s\nkitti2015: %s\n' % (sintel_root, kitti_root))
    return roots


def predict_once(folder, golden_checkpoint, *options):
    """The test layout, the checkpoint, and flows/ from one --predict run, in ``folder``."""
    roots = make_test_layout(folder)
    shutil.copy(golden_checkpoint('MaskFlownet_S'), folder / CHECKPOINT_NAME)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('MASKFLOWNET_DATASETS', str(roots))
        patch.chdir(folder)
        assert main_cli.main(PREDICT + [str(folder / CHECKPOINT_NAME)] + list(options)) == 0
    return folder


@pytest.fixture(scope='module')
def predicted(tmp_path_factory, golden_checkpoint):
    """At the default network sizes (448 x 1024 Sintel, 512 x 1152 KITTI)."""
    return predict_once(tmp_path_factory.mktemp('predicted'), golden_checkpoint)


@pytest.fixture(scope='module')
def predicted_small(tmp_path_factory, golden_checkpoint):
    """At network size 64 x 128, so that restarts which predict again are fast."""
    return predict_once(tmp_path_factory.mktemp('predicted_small'), golden_checkpoint, *SMALL)


def copy_flows(source, tmp_path, monkeypatch):
    """A copy of ``source``'s flows/ in the working directory tmp_path; returns that copy."""
    shutil.copytree(source / 'flows', tmp_path / 'flows')
    monkeypatch.setenv('MASKFLOWNET_DATASETS', str(source / 'roots.yaml'))
    monkeypatch.chdir(tmp_path)
    return tmp_path / 'flows'


def snapshot(folder):
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes())
            for p in folder.rglob('*') if p.is_file()}


def test_predict_writes_both_benchmarks_in_their_layouts(predicted, s_pipe):
    out = predicted / 'flows'
    files = sorted(str(p.relative_to(out)) for p in out.rglob('*') if p.is_file())
    assert files == [KITTI_OUT + '/2015/000007_10.png',
                     KITTI_OUT + '/2015/000007_10_occ.png',
                     KITTI_OUT + '/predict_settings.json',
                     SINTEL_OUT + '/clean/market_1/frame_0001.flo',
                     SINTEL_OUT + '/clean/market_1/frame_0001_occ.png',
                     SINTEL_OUT + '/final/market_1/frame_0001.flo',
                     SINTEL_OUT + '/final/market_1/frame_0001_occ.png',
                     SINTEL_OUT + '/predict_settings.json']

    final_dir = out / SINTEL_OUT / 'final' / 'market_1'
    frames = [flowio.read_image_rgb(predicted / 'sintel' / 'test' / 'final' / 'market_1' / n)
              for n in ('frame_0001.png', 'frame_0002.png')]
    flow, occ, _ = s_pipe.predict_pair(*frames, resize=(448, 1024))
    written = flowio.read_flo(final_dir / 'frame_0001.flo')
    assert written.shape == (436, 1024, 2)
    # Written exactly as predicted, up to the float noise of batched vs single inference.
    np.testing.assert_allclose(written, flow, atol=1e-3, rtol=0)
    occ_png = flowio.read_image(final_dir / 'frame_0001_occ.png')[..., 0]
    assert np.abs(occ_png.astype(float) - occ[..., 0] * 255).max() <= 0.51

    frames = [flowio.read_image(predicted / 'kitti15' / 'testing' / 'image_2' / n)
              for n in ('000007_10.png', '000007_11.png')]   # KITTI is read in BGR order
    flow = s_pipe.predict_pair(*frames, resize=(512, 1152))[0]
    kitti_flow, valid = flowio.read_kitti_flow_png(out / KITTI_OUT / '2015' / '000007_10.png')
    assert kitti_flow.shape == (375, 1242, 2) and valid.all()
    assert np.abs(kitti_flow - np.clip(flow, -512, 511.98)).max() <= 1 / 128 + 1e-6

    sintel_record, kitti_record = (json.loads((out / f / 'predict_settings.json').read_text())
                                   for f in (SINTEL_OUT, KITTI_OUT))
    assert sintel_record['network_size'] == [448, 1024]
    assert kitti_record['network_size'] == [512, 1152]
    for record in (sintel_record, kitti_record):
        assert record['network_class'] == 'MaskFlownet_S'
        assert re.fullmatch('[0-9a-f]{64}', record['weights_sha256'])
    assert sintel_record['weights_sha256'] == kitti_record['weights_sha256']


@pytest.mark.parametrize('resize', [[], SMALL])
def test_restart_with_the_same_settings_skips_and_rewrites_nothing(
        resize, predicted, predicted_small, tmp_path, monkeypatch, capsys):
    source = predicted_small if resize else predicted
    flows = copy_flows(source, tmp_path, monkeypatch)
    before = snapshot(flows)
    assert main_cli.main(PREDICT + [str(source / CHECKPOINT_NAME)] + resize) == 0
    out = capsys.readouterr().out
    assert re.search(r'sintel +0 written, 2 already there', out), out
    assert re.search(r'kitti\.2015 +0 written, 1 already there', out), out
    assert snapshot(flows) == before


def retrained_checkpoint(folder, golden_checkpoint):
    """The golden checkpoint with one weight changed, under the same file name elsewhere."""
    arrays = mx.nd.load(str(golden_checkpoint('MaskFlownet_S')))
    name = sorted(arrays)[0]
    arrays[name] = arrays[name] + 0.5
    (folder / 'retrained').mkdir()
    path = folder / 'retrained' / CHECKPOINT_NAME
    mx.nd.save(str(path), arrays)
    return path


@pytest.mark.parametrize('change', ['retrained checkpoint', 'resize'])
def test_restart_with_other_settings_refuses_and_changes_nothing(
        change, predicted_small, tmp_path, monkeypatch, golden_checkpoint, capsys):
    flows = copy_flows(predicted_small, tmp_path, monkeypatch)
    if change == 'resize':   # the default size, not the 64 x 128 of the first run
        args = PREDICT + [str(predicted_small / CHECKPOINT_NAME)]
        detail = 'network input size 64x128, now 448x1024'
    else:
        args = PREDICT + [str(retrained_checkpoint(tmp_path, golden_checkpoint))] + SMALL
        detail = 'checkpoint weights sha256'
    before = snapshot(flows)
    assert main_cli.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: flows/%s: written by --predict with other settings ('
                          % SINTEL_OUT)
    assert detail in err and 'move or delete flows/%s' % SINTEL_OUT in err
    assert err.count('\n') == 1
    assert snapshot(flows) == before


def test_a_folder_without_settings_record_is_refused_before_anything_is_written(
        predicted_small, tmp_path, monkeypatch, capsys):
    flows = copy_flows(predicted_small, tmp_path, monkeypatch)
    (flows / KITTI_OUT / 'predict_settings.json').unlink()
    (flows / SINTEL_OUT / 'final' / 'market_1' / 'frame_0001.flo').unlink()   # work to do
    before = snapshot(flows)
    assert main_cli.main(PREDICT + [str(predicted_small / CHECKPOINT_NAME)] + SMALL) == 2
    err = capsys.readouterr().err
    assert err == ('error: flows/%s: holds files but no predict_settings.json, so the checkpoint '
                   'and settings that wrote them are unknown; move or delete flows/%s to predict '
                   'again with these settings\n' % (KITTI_OUT, KITTI_OUT))
    assert snapshot(flows) == before   # the missing Sintel flow was not written either


def test_truncated_outputs_are_written_again(predicted_small, tmp_path, monkeypatch, capsys):
    flows = copy_flows(predicted_small, tmp_path, monkeypatch)
    flo = flows / SINTEL_OUT / 'clean' / 'market_1' / 'frame_0001.flo'
    png = flows / KITTI_OUT / '2015' / '000007_10.png'
    for path in (flo, png):
        path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])
    before = snapshot(flows)
    assert main_cli.main(PREDICT + [str(predicted_small / CHECKPOINT_NAME)] + SMALL) == 0
    out = capsys.readouterr().out
    assert re.search(r'sintel +1 written, 1 already there', out), out
    assert re.search(r'kitti\.2015 +1 written, 0 already there', out), out
    # Predicted again: the same flow, up to float noise (one 1/64 px step in the PNG).
    np.testing.assert_allclose(flowio.read_flo(flo), flowio.read_flo(predicted_small / 'flows' /
                               flo.relative_to(flows)), atol=1e-3, rtol=0)
    np.testing.assert_allclose(flowio.read_kitti_flow_png(png)[0], flowio.read_kitti_flow_png(
        predicted_small / 'flows' / png.relative_to(flows))[0], atol=1 / 64 + 1e-6, rtol=0)
    rerun = {str(p.relative_to(flows)) for p in (flo, png, flo.with_name('frame_0001_occ.png'),
                                                 png.with_name('000007_10_occ.png'))}
    assert {k: v for k, v in snapshot(flows).items() if k not in rerun} == \
        {k: v for k, v in before.items() if k not in rerun}


def test_valid_needs_a_checkpoint(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main_cli.main(['MaskFlownet_S.yaml', '--valid']) == 2
    assert 'need a checkpoint' in capsys.readouterr().err


def test_bad_batch_and_unwritable_log_are_one_line_errors(tmp_path, monkeypatch, golden_checkpoint, capsys):
    monkeypatch.chdir(tmp_path)
    assert main_cli.main(['MaskFlownet_S.yaml', '--valid', '--batch', '0']) == 2
    assert capsys.readouterr().err == 'error: --batch 0: must be 1 or more\n'
    (tmp_path / 'logs').write_text('a file where the log folder should be')
    assert main_cli.main(['MaskFlownet_S.yaml', '--valid', '-c', str(golden_checkpoint('MaskFlownet_S'))]) == 2
    err = capsys.readouterr().err
    assert err == 'error: logs/val: cannot write there (Not a directory)\n'


def test_the_warped_image_is_computed_only_when_asked(s_pipe):
    frames = [np.full((64, 128, 3), v, np.uint8) for v in (90, 110)]
    flow, occ, warped = s_pipe.predict_pair(*frames)
    assert warped is None and flow.shape == (64, 128, 2) and occ.shape == (64, 128, 1)
    flow2, _, warped = s_pipe.predict_pair(*frames, warped=True)
    assert warped.shape == (64, 128, 3)
    np.testing.assert_array_equal(flow, flow2)
