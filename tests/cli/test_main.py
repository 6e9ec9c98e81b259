"""main.py end to end, in this process: training runs (stage 2 from a stage-1 checkpoint,
branching resumes, non-finite stops), --valid and --predict on the bundled sample data checked
with independent numpy, and the one-line errors of bad options and configs."""
import json
import pickle
import re
import shutil
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest

import main as main_cli
from reader import chairs, flowio, kitti, sintel
from reader.flowio import read_flo, write_flo
from reader.sample import load_sample
from tracking.runlog import RunLog
from tests.helpers import (SAMPLE, log_lines, logged, numpy_metrics, set_up_calls_and_status,
                           write_small_chairs_config)


@pytest.mark.slow
def test_the_process_is_set_up_before_mxnet_loads(tmp_path):
    words, output = set_up_calls_and_status('main', ['no_such_config.yaml', '--valid'], tmp_path)
    assert words == ['[False]', '2'], output


# --------------------------------------------------------------- training

@pytest.mark.slow
def test_maskflownet_from_a_maskflownet_s_checkpoint_loads_and_freezes_the_head(workdir, golden_checkpoint):
    # A MaskFlownet-S run's checkpoint: stage 2 starts a new run at step 0 even without
    # --clear_steps (the S run's optimizer state does not fit MaskFlownet).
    s_ckpt = workdir / 's01Nov01-0000_1000.params'
    s_ckpt.write_bytes(golden_checkpoint('MaskFlownet_S').read_bytes())
    assert main_cli.main(['MaskFlownet.yaml', '--dataset_cfg', 'small.yaml', '--debug', '-c', str(s_ckpt),
                          '--max_steps', '2']) == 0
    saved = list((workdir / 'weights').glob('*_2.params'))
    assert len(saved) == 1 and not saved[0].name.startswith('s01Nov01-0000')
    trained = mx.nd.load(str(saved[0]))
    head = mx.nd.load(str(s_ckpt))
    for name, value in head.items():
        np.testing.assert_array_equal(trained['MaskFlownet_S.' + name].asnumpy(), value.asnumpy())


def test_training_errors_are_one_line(workdir, capsys):
    assert main_cli.main(['MaskFlownet_S.yaml', '--dataset_cfg', 'sintel.yaml', '--debug']) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and 'MASKFLOWNET_SINTEL' in err and err.count('\n') == 1
    assert not (workdir / 'weights').exists()


@pytest.mark.slow
def test_debug_uses_the_bundled_samples_whatever_dataset_variables_say(tmp_path, monkeypatch):
    monkeypatch.setenv('MASKFLOWNET_DATASETS', 'placeholder')   # recorded, so restored afterwards
    monkeypatch.delenv('MASKFLOWNET_DATASETS')                  # (main.py sets it for --debug)
    monkeypatch.setenv('MASKFLOWNET_CHAIRS', str(tmp_path / 'no_such_chairs'))
    monkeypatch.chdir(tmp_path)
    write_small_chairs_config(tmp_path)
    assert main_cli.main(['MaskFlownet_S.yaml', '--dataset_cfg', 'small.yaml', '--debug',
                          '--max_steps', '1']) == 0
    log, = (tmp_path / 'logs' / 'debug').glob('*.log')
    # The bundled samples: one chairs training pair; chairs val + Sintel clean and final.
    assert 'start=0, train=1, val=3' in log.read_text()


def optimizer_wd(states_path):
    _, optimizer = pickle.loads(Path(states_path).read_bytes())
    return optimizer.wd


@pytest.mark.slow
def test_branching_resume_nan_stop_and_stale_files(tmp_path, monkeypatch, capsys):
    """One small run through the CLI: --use_wd reaches the optimizer, a resume from an older
    checkpoint branches into a new run and leaves the old history alone, a non-finite label
    stops the run with one line and no checkpoint, and dead processes' temp files go."""
    chairs_root = tmp_path / 'chairs'
    shutil.copytree(SAMPLE / 'FlyingChairs_release', chairs_root)
    (tmp_path / 'roots.yaml').write_text('chairs: %s\n' % chairs_root)
    monkeypatch.setenv('MASKFLOWNET_DATASETS', str(tmp_path / 'roots.yaml'))
    monkeypatch.chdir(tmp_path)
    write_small_chairs_config(tmp_path)
    (tmp_path / 'net.yaml').write_text('optimizer:\n  learning_rate: [[100, 1.0e-4]]\n  wd: 0.5\n'
                                       'network:\n  class: MaskFlownet_S\n')
    common = ['net.yaml', '--dataset_cfg', 'small.yaml', '--debug', '--seed', '1']
    assert main_cli.main(common + ['--max_steps', '6', '--use_wd']) == 0
    log, = (tmp_path / 'logs' / 'debug').glob('*.log')
    run = log.stem
    weights_dir = tmp_path / 'weights'
    first = {p.name: p.read_bytes() for p in weights_dir.iterdir()}
    assert sorted(first) == ['%s_%d.%s' % (run, s, e) for s in (2, 4, 6)
                             for e in ('params', 'run.json', 'states')]
    assert optimizer_wd(weights_dir / ('%s_6.states' % run)) == 0.5
    out = capsys.readouterr().out
    assert 'validation: sintel: not configured (set MASKFLOWNET_SINTEL' in out

    # Resume from step 4 while 6 exists: a new run that starts at step 4, without --use_wd.
    stale = weights_dir / ('%s_4.params.tmp-%d' % (run, 2 ** 22 + 1))   # no such process
    stale.write_bytes(b'left by a killed save')
    assert main_cli.main(common + ['-c', '%s:4' % run, '--max_steps', '1']) == 0
    assert not stale.exists()
    for name, content in first.items():
        assert (weights_dir / name).read_bytes() == content, name
    branch = sorted({p.name.rsplit('_', 1)[0] for p in weights_dir.iterdir()} - {run})
    assert len(branch) == 1
    branch = branch[0]
    assert sorted(p.name for p in weights_dir.glob(branch + '*')) == \
        ['%s_5.%s' % (branch, e) for e in ('params', 'run.json', 'states')]
    assert optimizer_wd(weights_dir / ('%s_5.states' % branch)) == 0
    branch_log = log_lines(tmp_path / 'logs' / 'debug' / ('%s.log' % branch))
    assert branch_log[0].startswith('start=4, ')
    assert 'branched_from=weights/%s_4.params' % run in branch_log
    out = capsys.readouterr().out
    assert 'continuing its history as the new run %s' % branch in out
    assert 'newest checkpoint weights/%s_5.params' % branch in out

    # A label that overflows the loss (finite in the file, inf once squared).
    flo = chairs_root / 'data' / '00001_flow.flo'
    flow = read_flo(flo)
    write_flo(flo, flow * np.float32(1e30))
    assert main_cli.main(common + ['-c', branch, '--max_steps', '2']) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and err.startswith('error: step 6: non-finite loss (')
    assert 'on samples chairs/00001' in err and 'newest checkpoint weights/%s_5.params' % branch in err
    assert sorted(p.name for p in weights_dir.glob(branch + '*')) == \
        ['%s_5.%s' % (branch, e) for e in ('params', 'run.json', 'states')]


@pytest.mark.parametrize('args, message', [
    (['--max_steps', '0'], '--max_steps 0: must be 1 or more'),
    (['--max_steps', '-3'], '--max_steps -3: must be 1 or more'),
    (['-g=-1'], "-g -1: expected distinct comma-separated GPU ids"),
    (['-g', '0,0'], "-g 0,0: expected distinct comma-separated GPU ids"),
])
def test_bad_training_options_are_one_line_before_any_work(workdir, capsys, args, message):
    assert main_cli.main(['MaskFlownet_S.yaml', '--debug'] + args) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ' + message) and err.count('\n') == 1, err
    assert not (workdir / 'logs').exists() and not (workdir / 'weights').exists()


@pytest.mark.parametrize('line, message', [
    ('  upfeat_ch: abc', "network.upfeat_ch: must be a list; got 'abc'"),
    ('  upfeat_ch: [16, 16, 16]', 'network.upfeat_ch: must be a list of 4 positive integers'),
    ('  flow_multiplier: x', "network.flow_multiplier: must be a number; got 'x'"),
    ('  deform_bias: maybe', "network.deform_bias: must be true or false; got 'maybe'"),
    ('  mw: [a, b]', "network.mw[0]: must be a number; got 'a'"),
])
def test_bad_network_config_values_name_the_file_and_key(workdir, capsys, line, message):
    config = workdir / 'net.yaml'
    config.write_text('network:\n  class: MaskFlownet_S\n%s\n' % line)
    assert main_cli.main([str(config), '--debug']) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: %s: %s' % (config, message)) and err.count('\n') == 1


def test_a_dataset_config_given_as_the_network_config_is_refused(workdir, capsys):
    assert main_cli.main(['chairs.yaml', '--debug']) == 2
    err = capsys.readouterr().err
    assert 'chairs.yaml: a dataset config, not a network config' in err


def test_no_tensorboard_switch_reaches_the_run_and_writes_no_events(tmp_path, monkeypatch):
    import engine.commands
    from common.errors import UserError
    calls = []

    def run_training(config, dataset_cfg, ctx, options):
        calls.append(options)
        raise UserError('stopped by the test')   # whatever the run would return
    monkeypatch.setattr(engine.commands, 'run_training', run_training)
    for argv, expected in (([], True), (['--no_tensorboard'], False)):
        assert main_cli.main(['MaskFlownet_S.yaml'] + argv) == 2
        assert calls[-1].tensorboard is expected
    RunLog(str(tmp_path / 'run.log')).close()
    assert not (tmp_path / 'tensorboard').exists()


def test_dist_kvstore_outside_a_launched_job_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv('DMLC_ROLE', raising=False)
    monkeypatch.chdir(tmp_path)
    assert main_cli.main(['MaskFlownet_S.yaml', '--debug', '--kvstore', 'dist_sync']) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and err.startswith('error: --kvstore dist_sync: this process is '
                                                   'not a worker of a distributed job')


# --------------------------------------------------------------- --valid

@pytest.mark.slow
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


# --------------------------------------------------------------- --predict

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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_sigterm_stops_a_run_with_one_line_its_log_says_so_and_the_lock_goes(chairs_copy):
    """A scheduler's preemption (SIGTERM): 'terminated', exit status 143, the run log ends with
    stopped=terminated, the run's lock is released, and the run resumes."""
    import signal
    import subprocess
    import sys
    import time
    from tests.helpers import REPO
    command = [sys.executable, str(REPO / 'main.py'), 'MaskFlownet_S.yaml', '--dataset_cfg',
               'small.yaml', '--debug', '--no_tensorboard', '--max_steps', '200']
    process = subprocess.Popen(command, cwd=chairs_copy, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not list(
                (chairs_copy / 'weights').glob('*_2.params')):
            time.sleep(0.2)
        assert list((chairs_copy / 'weights').glob('*.lock')), 'the run did not start in time'
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 143, err
    assert err.splitlines()[-1] == 'terminated (SIGTERM)'
    log, = (chairs_copy / 'logs' / 'debug').glob('*.log')
    assert log.read_text().splitlines()[-1].endswith('] stopped=terminated (SIGTERM)')
    assert not list((chairs_copy / 'weights').glob('*.lock'))
    assert main_cli.main(['MaskFlownet_S.yaml', '--dataset_cfg', 'small.yaml', '--debug',
                          '--no_tensorboard', '-c', log.stem, '--max_steps', '1']) == 0
