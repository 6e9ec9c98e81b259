"""main.py on your own data (dataset: custom): train on a list of real-format files of every
kind, resume, --valid on the validation list against numpy on the image-pair command line's
flows; bad lists refused in one line before any network is built."""
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

import main as main_cli
import predict_new_data
from reader import flowio
from tests.helpers import one_line

REPO = Path(__file__).resolve().parent.parent.parent
DATA = REPO / 'tests' / 'data' / 'datasets'
SINTEL = DATA / 'sintel' / 'training'
KITTI = DATA / 'kitti2015' / 'training'
CHAIRS = DATA / 'flyingchairs_crop50' / 'FlyingChairs_release' / 'data'


def make_custom_data(folder):
    """64 x 96 crops of the bundled Sintel and KITTI pairs (and a 50 x 50 FlyingChairs pair in
    the validation list), their flows as .flo, .pfm, KITTI .png and .npy, with and without a
    VALID mask, one with an OCC map; a folder with a space in its name."""
    (folder / 'my frames').mkdir(parents=True)
    (folder / 'gt').mkdir()
    sintel = [cv2.imread(str(SINTEL / 'clean' / 'alley_1' / n)) for n in ('frame_0002.png',
                                                                          'frame_0003.png')]
    sintel_flow = flowio.read_flo(SINTEL / 'flow' / 'alley_1' / 'frame_0002.flo')
    occlusions = cv2.imread(str(SINTEL / 'occlusions' / 'alley_1' / 'frame_0002.png'),
                            cv2.IMREAD_UNCHANGED)
    kitti = [cv2.imread(str(KITTI / 'image_2' / n)) for n in ('000000_10.png', '000000_11.png')]
    kitti_flow, kitti_valid = flowio.read_kitti_flow_png(KITTI / 'flow_occ' / '000000_10.png')
    lines = []
    crops = [('sintel', 100, 400, 'flo'), ('sintel', 200, 600, 'pfm'),
             ('kitti', 250, 500, 'png'), ('sintel', 300, 100, 'npy')]
    for k, (source, top, left, kind) in enumerate(crops):
        rows, cols = slice(top, top + 64), slice(left, left + 96)
        frames, gt = (sintel, sintel_flow) if source == 'sintel' else (kitti, kitti_flow)
        for j, frame in enumerate(frames):
            cv2.imwrite(str(folder / 'my frames' / ('%d_%d.png' % (k, j))), frame[rows, cols])
        flow_path = folder / 'gt' / ('%d.%s' % (k, kind))
        if kind == 'flo':
            flowio.write_flo(flow_path, gt[rows, cols])
        elif kind == 'pfm':
            flowio.write_pfm(flow_path, gt[rows, cols])
        elif kind == 'png':
            flowio.write_kitti_flow_png(flow_path, gt[rows, cols], kitti_valid[rows, cols])
        else:
            np.save(flow_path, gt[rows, cols])
        line = "'my frames/%d_0.png' my\\ frames/%d_1.png gt/%d.%s" % (k, k, k, kind)
        if k == 1:   # a VALID mask (16-bit) and an OCC map
            valid = np.full((64, 96), 65535, np.uint16)
            valid[:, :30] = 0
            cv2.imwrite(str(folder / 'gt' / '1_valid.png'), valid)
            cv2.imwrite(str(folder / 'gt' / '1_occ.png'), occlusions[rows, cols])
            line += ' gt/1_valid.png gt/1_occ.png'
        lines.append(line)
    for j, name in enumerate(('00001_img1.ppm', '00001_img2.ppm')):
        cv2.imwrite(str(folder / 'my frames' / ('chairs_%d.png' % j)),
                    flowio.read_image(CHAIRS / name))
    shutil.copy(CHAIRS / '00001_flow.flo', folder / 'gt' / 'chairs.flo')
    (folder / 'train.txt').write_text('# my training pairs\n\n' + '\n'.join(lines) + '\n')
    (folder / 'val.txt').write_text(
        '\n'.join(lines[1:3]) + "\n'my frames/chairs_0.png' 'my frames/chairs_1.png' "
        'gt/chairs.flo   # 50 x 50: runs at 64 x 64\n')
    (folder / 'mine.yaml').write_text(
        'dataset: custom\ntrain_list: train.txt\nvalidation_list: val.txt\nbatch_size: 2\n'
        'orig_shape: [64, 96]\nvalidation_steps: 2\ncheckpoint_steps: 2\naugmentation: sintel\n')
    return folder / 'mine.yaml'


def log_lines(path):
    return [re.sub(r'^\[\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\] ', '', line)
            for line in Path(path).read_text().splitlines()]


def read_list_line(folder, line):
    """(image 1, image 2, flow, valid, occluded) of one list line, read independently: cv2 and
    numpy, not the project's readers (KITTI's PNG decoded by hand)."""
    import shlex
    fields = [str(folder / f) if f != '-' else None
              for f in shlex.split(line, comments=True)]
    img1, img2, flow_path = fields[:3]
    valid_path, occ_path = (fields[3:] + [None, None])[:2]
    if flow_path.endswith('.png'):
        raw = cv2.imread(flow_path, cv2.IMREAD_UNCHANGED).astype(np.float64)
        gt = (raw[..., 2:0:-1] - 32768) / 64
        valid = raw[..., 0] > 0
        gt[~valid] = 0
    elif flow_path.endswith('.npy'):
        gt, valid = np.load(flow_path), None
    elif flow_path.endswith('.pfm'):
        data = Path(flow_path).read_bytes()
        gt = np.frombuffer(data[-64 * 96 * 12:], '<f4').reshape(64, 96, 3)[::-1, :, :2]
        valid = None
    else:
        header = np.frombuffer(Path(flow_path).read_bytes()[4:12], '<i4')
        gt = np.fromfile(flow_path, '<f4', offset=12).reshape(header[1], header[0], 2)
        valid = None
    valid = np.ones(gt.shape[:2], bool) if valid is None else valid
    if valid_path:
        valid &= cv2.imread(valid_path, cv2.IMREAD_UNCHANGED) > 0
    occluded = cv2.imread(occ_path, cv2.IMREAD_UNCHANGED) > 0 if occ_path else None
    return img1, img2, gt.astype(np.float64), valid, occluded


@pytest.mark.slow
def test_train_resume_and_validate_on_a_custom_list(tmp_path, monkeypatch, golden_checkpoint,
                                                   capsys):
    config = make_custom_data(tmp_path / 'mine')
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv('MASKFLOWNET_DATASETS', raising=False)
    start = tmp_path / 'start.params'
    shutil.copy(golden_checkpoint('MaskFlownet_S'), start)
    train = ['MaskFlownet_S.yaml', '--dataset_cfg', str(config), '--seed', '3']
    assert main_cli.main(train + ['-c', str(start), '--clear_steps', '--max_steps', '2']) == 0
    out = capsys.readouterr().out
    run_id = re.search(r'run (\S+) stopped at step 2', out).group(1)
    lines = log_lines(tmp_path / 'logs' / ('%s.log' % run_id))
    assert lines[0].startswith('start=0, train=4, val=3, ') and lines[0].endswith('batch=2')
    validation = [l for l in lines if 'custom.val=' in l]
    assert [l.split(',')[0] for l in validation] == ['steps=1', 'steps=2']
    assert all(re.fullmatch(r'steps=\d, custom\.val=[0-9.]+', l) for l in validation)

    assert main_cli.main(train + ['-c', run_id, '--max_steps', '1']) == 0   # the resume
    assert 'run %s stopped at step 3' % run_id in capsys.readouterr().out
    lines = log_lines(tmp_path / 'logs' / ('%s.log' % run_id))
    assert any(l.startswith('start=2, train=4, val=3') for l in lines)
    assert lines[-1].startswith('steps=3, epe=')
    checkpoint = tmp_path / 'weights' / ('%s_3.params' % run_id)
    assert checkpoint.is_file()

    assert main_cli.main(['MaskFlownet_S.yaml', '--dataset_cfg', str(config), '--valid',
                          '-c', run_id]) == 0
    report = capsys.readouterr().out
    assert 'custom.val:epe ' in report and 'sintel' not in report   # the list, not benchmarks
    logged = dict(re.fullmatch(r'steps=3, (\S+)=(\S+)', l).groups()
                  for l in log_lines(tmp_path / 'logs' / 'val' / ('%s.val.log' % run_id)))

    # The same pairs through the image-pair command line, measured with numpy.
    epes, err_all, occluded_errs = [], [], []
    for k, line in enumerate((tmp_path / 'mine' / 'val.txt').read_text().splitlines()):
        img1, img2, gt, valid, occluded = read_list_line(tmp_path / 'mine', line)
        out = tmp_path / ('cli_%d.flo' % k)
        assert predict_new_data.main([str(out), 'MaskFlownet_S.yaml', '--image_1', img1,
                                      '--image_2', img2, '-c', str(checkpoint)]) == 0
        flow = flowio.read_flo(out).astype(np.float64)
        assert flow.shape == gt.shape
        err = np.sqrt(((flow - gt) ** 2).sum(-1))
        epes.append(err[valid].mean())
        err_all.append(err[valid])
        if occluded is not None:
            occluded_errs.append((err[valid & ~occluded], err[valid & occluded]))
    pooled = np.concatenate(err_all)
    assert float(logged['custom.val:epe']) == pytest.approx(np.mean(epes), rel=1e-4)
    assert float(logged['custom.val:epe_all']) == pytest.approx(pooled.mean(), rel=1e-4)
    for threshold in (1, 3, 5):
        assert float(logged['custom.val:above%dpx' % threshold]) == pytest.approx(
            (pooled > threshold).mean(), abs=2e-3)   # a pixel at the threshold may tip
    (noc, occ), = occluded_errs
    assert float(logged['custom.val:epe_noc']) == pytest.approx(noc.mean(), rel=1e-4)
    assert float(logged['custom.val:epe_occ']) == pytest.approx(occ.mean(), rel=1e-4)
    assert len(epes) == 3 and epes[0] != epes[1]


@pytest.fixture
def workdir(tmp_path, monkeypatch, no_network_built):
    """Custom data in tmp_path/mine; no network may be built."""
    config = make_custom_data(tmp_path / 'mine')
    monkeypatch.chdir(tmp_path)
    return config


@pytest.mark.parametrize('edit, problem', [
    (lambda text: text.replace('gt/2.png', 'gt/none.png'), ':5: FLOW %s/gt/none.png: file not found'),
    (lambda text: text + 'a.png\n', ':7: 1 field, expected 3 to 5'),
    (lambda text: text.replace('gt/0.flo', 'gt/0.flow'), ":3: FLOW %s/gt/0.flow: unsupported flow "
                                                         "extension '.flow'"),
    (lambda text: text.replace("'my frames/0_0.png'", "'my frames/chairs_0.png'"),
     ':3: IMAGE2 %s/my frames/0_1.png: is 96x64 but IMAGE1'),
    (lambda text: text.replace('gt/3.npy', 'gt/chairs.flo'), ':6: FLOW %s/gt/chairs.flo: flow is '
                                                             '50x50 but IMAGE1'),
    (lambda text: text.replace("'my frames/0_0.png'", 'my frames/0_0.png'),
     ':3: IMAGE1 %s/my: file not found'),   # a space needs quotes or a backslash
    (lambda text: '# nothing\n', ': no samples'),
])
def test_a_bad_training_list_stops_main_before_any_network(workdir, capsys, edit, problem):
    train_list = workdir.parent / 'train.txt'
    train_list.write_text(edit(train_list.read_text()))
    assert main_cli.main(['MaskFlownet_S.yaml', '--dataset_cfg', str(workdir)]) == 2
    one_line(capsys, 'error: ' + str(train_list) + (problem.replace('%s', str(workdir.parent))
                                                    if '%s' in problem else problem))
    assert not (workdir.parent.parent / 'weights').exists()
    assert not (workdir.parent.parent / 'logs').exists()


def test_a_nan_in_a_flow_stops_training_before_it_starts(workdir, capsys):
    flow = np.load(workdir.parent / 'gt' / '3.npy')
    flow[5, 7, 0] = np.nan
    np.save(workdir.parent / 'gt' / '3.npy', flow)
    assert main_cli.main(['MaskFlownet_S.yaml', '--dataset_cfg', str(workdir)]) == 2
    one_line(capsys, 'train.txt:6: FLOW', '3.npy: holds 1 NaN or infinite values')


def test_valid_with_a_custom_config_needs_its_validation_list(workdir, capsys):
    (workdir.parent / 'val.txt').write_text('gt/none.png b.png c.flo\n')
    assert main_cli.main(['MaskFlownet_S.yaml', '--dataset_cfg', str(workdir), '--valid',
                          '-c', 'x']) == 2
    one_line(capsys, 'val.txt:1: IMAGE1', 'file not found')
    workdir.write_text('dataset: custom\ntrain_list: train.txt\n')
    assert main_cli.main(['MaskFlownet_S.yaml', '--dataset_cfg', str(workdir), '--valid',
                          '-c', 'x']) == 2
    one_line(capsys, 'mine.yaml: validation_list: missing: --valid with a custom dataset config')
    assert main_cli.main(['MaskFlownet_S.yaml', '--dataset_cfg', str(workdir), '--predict',
                          '-c', 'x']) == 2
    one_line(capsys, 'predict_new_data.py --pairs')
    assert not (workdir.parent.parent / 'logs').exists()
