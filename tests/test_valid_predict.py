"""main.py --valid and --predict on the bundled sample data, checked with independent numpy."""
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import main as main_cli
from network.config import Config
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
    assert 0 < fl < 1

    sample, = chairs.list_samples(SAMPLE / 'FlyingChairs_release', 'val')
    ex = load_sample(sample)
    epe, _ = numpy_metrics(s_pipe.predict_pair(ex.img1, ex.img2)[0], ex.flow, None)
    assert logged(lines, 'chairs:epe') == pytest.approx(epe, rel=1e-4)


@pytest.fixture
def test_layout(tmp_path):
    """Sintel test/ and KITTI testing/ trees made of the real sample frames."""
    sintel_root = tmp_path / 'sintel'
    for pass_name in ('clean', 'final'):
        src = SAMPLE / 'MPI-Sintel-complete' / 'training' / pass_name / 'alley_1'
        dst = sintel_root / 'test' / pass_name / 'market_1'
        dst.mkdir(parents=True)
        for k, frame in enumerate(sorted(src.iterdir()), start=1):
            shutil.copy(frame, dst / ('frame_%04d.png' % k))
    kitti_root = tmp_path / 'kitti15'
    (kitti_root / 'testing' / 'image_2').mkdir(parents=True)
    for name in ('000000_10.png', '000000_11.png'):
        shutil.copy(SAMPLE / 'data_scene_flow' / 'training' / 'image_2' / name,
                    kitti_root / 'testing' / 'image_2' / name.replace('000000', '000007'))
    roots = tmp_path / 'roots.yaml'
    roots.write_text('sintel: %s\nkitti2015: %s\n' % (sintel_root, kitti_root))
    return roots


def test_predict_writes_both_benchmarks_and_restarts(tmp_path, monkeypatch, test_layout,
                                                     golden_checkpoint, s_pipe, capsys):
    monkeypatch.setenv('MASKFLOWNET_DATASETS', str(test_layout))
    monkeypatch.chdir(tmp_path)
    ckpt = tmp_path / 'abcNov20-1200_1000.params'
    shutil.copy(golden_checkpoint('MaskFlownet_S'), ckpt)
    args = ['MaskFlownet_S.yaml', '--predict', '-c', str(ckpt), '--occ_mask']
    assert main_cli.main(args) == 0
    out = tmp_path / 'flows'
    files = sorted(str(p.relative_to(out)) for p in out.rglob('*') if p.is_file())
    assert files == ['abcNov20-1200_1000_kitti/2015/000007_10.png',
                     'abcNov20-1200_1000_kitti/2015/000007_10_occ.png',
                     'abcNov20-1200_1000_sintel/clean/market_1/frame_0001.flo',
                     'abcNov20-1200_1000_sintel/clean/market_1/frame_0001_occ.png',
                     'abcNov20-1200_1000_sintel/final/market_1/frame_0001.flo',
                     'abcNov20-1200_1000_sintel/final/market_1/frame_0001_occ.png']

    final_dir = out / 'abcNov20-1200_1000_sintel' / 'final' / 'market_1'
    frames = [flowio.read_image_rgb(tmp_path / 'sintel' / 'test' / 'final' / 'market_1' / n)
              for n in ('frame_0001.png', 'frame_0002.png')]
    flow, occ, _ = s_pipe.predict_pair(*frames, resize=(448, 1024))
    written = flowio.read_flo(final_dir / 'frame_0001.flo')
    assert written.shape == (436, 1024, 2)
    # Written exactly as predicted, up to the float noise of batched vs single inference.
    np.testing.assert_allclose(written, flow, atol=1e-3, rtol=0)
    occ_png = flowio.read_image(final_dir / 'frame_0001_occ.png')[..., 0]
    assert np.abs(occ_png.astype(float) - occ[..., 0] * 255).max() <= 0.51

    frames = [flowio.read_image(tmp_path / 'kitti15' / 'testing' / 'image_2' / n)
              for n in ('000007_10.png', '000007_11.png')]   # KITTI is read in BGR order
    flow = s_pipe.predict_pair(*frames, resize=(512, 1152))[0]
    kitti_flow, valid = flowio.read_kitti_flow_png(out / 'abcNov20-1200_1000_kitti' / '2015' / '000007_10.png')
    assert kitti_flow.shape == (375, 1242, 2) and valid.all()
    assert np.abs(kitti_flow - np.clip(flow, -512, 511.98)).max() <= 1 / 128 + 1e-6

    before = {p: p.stat().st_mtime_ns for p in out.rglob('*') if p.is_file()}
    capsys.readouterr()
    assert main_cli.main(args) == 0
    assert '0 written, 2 already there' in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in out.rglob('*') if p.is_file()} == before


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
    assert err.startswith('error: logs/val/') and 'cannot write the log' in err and err.count('\n') == 1
