"""predict_new_data.py OUT_DIR CONFIG --frames DIR | --pairs LIST: the flows equal the image-pair
command line's (within each format's precision), restarts skip complete files, the settings
record refuses a mix, everything is checked before the network loads."""
import os
from pathlib import Path

import cv2
import flow_vis
import numpy as np
import pytest

import predict_new_data
from reader import flowio

REPO = Path(__file__).resolve().parent.parent.parent
SINTEL = REPO / 'tests' / 'data' / 'datasets' / 'sintel' / 'training' / 'clean' / 'alley_1'
FLOAT_NOISE = 1e-4   # a batch of pairs against one pair at a time


def run(*args):
    return predict_new_data.main([str(a) for a in args])


def one_line(capsys, *fragments):
    err = capsys.readouterr().err
    assert err.startswith('error: ') and err.count('\n') == 1, err
    for fragment in fragments:
        assert str(fragment) in err, err
    return err


@pytest.fixture(scope='module')
def frames(tmp_path_factory):
    """Four 64 x 96 frames, named so that a plain sort would put frame_10 second."""
    folder = tmp_path_factory.mktemp('clip') / 'my frames'
    folder.mkdir()
    a, b = (cv2.imread(str(SINTEL / name)) for name in ('frame_0002.png', 'frame_0003.png'))
    for name, image, top in (('frame_1.png', a, 100), ('frame_2.png', b, 100),
                             ('frame_3.png', a, 104), ('frame_10.png', b, 108)):
        cv2.imwrite(str(folder / name), image[top:top + 64, 500:596])
    (folder / 'notes.txt').write_text('not a frame')
    return folder


@pytest.fixture(scope='module')
def expected(frames, tmp_path_factory, golden_checkpoint):
    """The image-pair command line's flow and mask for each consecutive pair, by name."""
    folder = tmp_path_factory.mktemp('pairs')
    order = ['frame_1', 'frame_2', 'frame_3', 'frame_10']
    results = {}
    for first, second in zip(order, order[1:]):
        flow, mask = folder / (first + '.flo'), folder / (first + '_occ.png')
        assert run(flow, 'MaskFlownet_S.yaml', '--image_1', frames / (first + '.png'),
                   '--image_2', frames / (second + '.png'), '-c',
                   golden_checkpoint('MaskFlownet_S'), '--occ_mask', mask) == 0
        results[first] = flowio.read_flo(flow), cv2.imread(str(mask), cv2.IMREAD_UNCHANGED)
    return results


@pytest.fixture
def ckpt(golden_checkpoint):
    return golden_checkpoint('MaskFlownet_S')


def test_frames_give_the_flow_of_each_consecutive_pair_in_every_format(frames, expected, ckpt,
                                                                        tmp_path, capsys):
    out = tmp_path / 'new' / 'flows'   # made if missing
    assert run(out, 'MaskFlownet_S.yaml', '--frames', frames, '-c', ckpt, '--occ_mask') == 0
    assert capsys.readouterr().err == ''   # no progress bar off a terminal
    assert sorted(os.listdir(out)) == ['frame_1.flo', 'frame_1_occ.png', 'frame_2.flo',
                                       'frame_2_occ.png', 'frame_3.flo', 'frame_3_occ.png',
                                       'predict_settings.json']
    for name, (flow, mask) in expected.items():
        np.testing.assert_allclose(flowio.read_flo(out / (name + '.flo')), flow, atol=FLOAT_NOISE)
        got = cv2.imread(str(out / (name + '_occ.png')), cv2.IMREAD_UNCHANGED).astype(int)
        assert np.abs(got - mask).max() <= 1
    for fmt in ('npy', 'png', 'kitti'):
        folder = tmp_path / fmt
        assert run(folder, 'MaskFlownet_S.yaml', '--frames', frames, '-c', ckpt,
                   '--format', fmt, '--batch', '3') == 0
        for name, (flow, _) in expected.items():
            if fmt == 'npy':
                np.testing.assert_allclose(np.load(folder / (name + '.npy')), flow, atol=FLOAT_NOISE)
            elif fmt == 'png':   # flow_vis colours, true RGB
                colours = cv2.imread(str(folder / (name + '.png')))[..., ::-1].astype(int)
                assert np.abs(colours - flow_vis.flow_to_color(flow)).max() <= 1
            else:   # KITTI: 1/64 px steps, every pixel valid
                got, valid = flowio.read_kitti_flow_png(folder / (name + '.png'))
                assert valid.all()
                assert np.abs(got - flow).max() <= 1 / 128 + FLOAT_NOISE


def test_a_restart_writes_only_what_is_missing_or_incomplete(frames, ckpt, tmp_path, capsys):
    out = tmp_path / 'flows'
    args = [out, 'MaskFlownet_S.yaml', '--frames', frames, '-c', ckpt, '--occ_mask']
    assert run(*args) == 0
    assert capsys.readouterr().out.startswith('%s: 3 flows written, 0 already there' % out)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    (out / 'frame_2_occ.png').unlink()                         # a mask missing
    data = (out / 'frame_3.flo').read_bytes()
    (out / 'frame_3.flo').write_bytes(data[:len(data) // 2])   # a flow cut short
    assert run(*args) == 0
    assert capsys.readouterr().out.startswith('%s: 2 flows written, 1 already there' % out)
    after = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert after['frame_1.flo'] == before['frame_1.flo']
    assert after['frame_1_occ.png'] == before['frame_1_occ.png']
    assert flowio.output_is_complete(out / 'frame_3.flo')
    assert run(*args) == 0
    assert '0 flows written, 3 already there' in capsys.readouterr().out


def test_a_folder_written_with_other_settings_is_refused_before_anything_is_written(
        frames, ckpt, tmp_path, capsys, golden_checkpoint):
    out = tmp_path / 'flows'
    assert run(out, 'MaskFlownet_S.yaml', '--frames', frames, '-c', ckpt) == 0
    capsys.readouterr()
    (out / 'frame_2.flo').unlink()
    for extra, fragment in ((['--resize', '128,128'],
                             "network input size each pair's own size rounded up to multiples "
                             'of 64, now 128x128'),
                            (['--format', 'npy'], 'output format "flo", now "npy"')):
        assert run(out, 'MaskFlownet_S.yaml', '--frames', frames, '-c', ckpt, *extra) == 2
        one_line(capsys, '%s: written by predict_new_data.py with other settings (' % out,
                 fragment, 'move or delete')
    other = tmp_path / 'other.params'
    import mxnet as mx
    arrays = mx.nd.load(str(ckpt))
    name = sorted(arrays)[0]
    arrays[name] = arrays[name] * 2
    mx.nd.save(str(other), arrays)
    assert run(out, 'MaskFlownet_S.yaml', '--frames', frames, '-c', other) == 2
    one_line(capsys, 'checkpoint weights sha256')
    assert not (out / 'frame_2.flo').exists()   # nothing written by the refused runs
    # flows of unknown origin (no record) are refused too, but not unrelated files
    stray = tmp_path / 'stray'
    stray.mkdir()
    (stray / 'readme.txt').write_text('mine')
    assert run(stray, 'MaskFlownet_S.yaml', '--frames', frames, '-c', ckpt) == 0
    (stray / 'predict_settings.json').unlink()
    assert run(stray, 'MaskFlownet_S.yaml', '--frames', frames, '-c', ckpt) == 2
    one_line(capsys, 'holds files but no predict_settings.json')


def test_pairs_lists_name_outputs_and_read_paths_relative_to_the_list(frames, expected, ckpt,
                                                                      tmp_path, capsys):
    lists = tmp_path / 'lists'
    lists.mkdir()
    rel = os.path.relpath(frames, lists)
    (lists / 'pairs.txt').write_text(
        '# IMAGE1 IMAGE2 [NAME]\n'
        '"%s/frame_1.png" "%s/frame_2.png"\n'
        '\n'
        '"%s/frame_2.png" "%s/frame_3.png" x/second.flo\n'
        '"%s/frame_3.png" "%s/frame_10.png" third\n' % (rel, rel, rel, rel, frames, frames))
    out = tmp_path / 'out'
    args = [out, 'MaskFlownet_S', '--pairs', lists / 'pairs.txt', '-c', ckpt, '--occ_mask',
            '--batch', '1']
    assert run(*args) == 0
    for name, path in (('frame_1', 'frame_1'), ('frame_2', 'x/second'), ('frame_3', 'third')):
        np.testing.assert_allclose(flowio.read_flo(out / (path + '.flo')), expected[name][0],
                                   atol=FLOAT_NOISE)
        assert (out / (path + '_occ.png')).is_file()
    # A restart with a subfolder among the outputs (the folder check once tried a file 'x' in
    # OUT, which the subfolder x is not).
    capsys.readouterr()
    assert run(*args) == 0
    assert '0 flows written, 3 already there' in capsys.readouterr().out


@pytest.fixture
def no_network(monkeypatch):
    from engine import predict

    def load_pipeline(*args, **kwargs):
        pytest.fail('the network was loaded before the inputs and outputs were checked')
    monkeypatch.setattr(predict, 'load_pipeline', load_pipeline)


def test_bad_inputs_and_outputs_are_found_before_the_network_loads(frames, ckpt, tmp_path,
                                                                    capsys, no_network):
    lists = tmp_path / 'lists'
    lists.mkdir()
    pairs = lists / 'pairs.txt'
    a, b = frames / 'frame_1.png', frames / 'frame_2.png'
    pairs.write_text('"%s" "%s"\n# two outputs of one name\n"%s" "%s" frame_1\n' % (a, b, b, a))
    assert run(tmp_path / 'out', 'MaskFlownet_S', '--pairs', pairs, '-c', ckpt) == 2
    one_line(capsys, '%s:3: writes %s' % (pairs, tmp_path / 'out' / 'frame_1.flo'),
             'which %s:1 writes too' % pairs)
    # a flow and a mask of one name
    pairs.write_text('"%s" "%s" x_occ\n"%s" "%s" x\n' % (a, b, b, a))
    assert run(tmp_path / 'out', 'MaskFlownet_S', '--pairs', pairs, '-c', ckpt, '--occ_mask',
               '--format', 'png') == 2
    one_line(capsys, '%s:2: writes %s' % (pairs, tmp_path / 'out' / 'x_occ.png'))
    pairs.write_text('"%s" missing.png\n' % a)
    assert run(tmp_path / 'out', 'MaskFlownet_S', '--pairs', pairs, '-c', ckpt) == 2
    one_line(capsys, '%s:1: IMAGE2 %s: file not found' % (pairs, lists / 'missing.png'))
    # the frames' own folder as the output, with PNG flows: they would replace the frames
    assert run(frames, 'MaskFlownet_S', '--frames', frames, '-c', ckpt, '--format', 'png') == 2
    one_line(capsys, 'frame_1.png: is the input')
    odd = tmp_path / 'odd'
    odd.mkdir()
    for k, size in enumerate([(64, 96), (64, 96), (65, 96)]):
        cv2.imwrite(str(odd / ('%d.jpg' % k)), np.zeros(size + (3,), np.uint8))
    assert run(tmp_path / 'out', 'MaskFlownet_S', '--frames', odd, '-c', ckpt) == 2
    one_line(capsys, '%s: is 96x65 but the frame before it, %s, is 96x64'
             % (odd / '2.jpg', odd / '1.jpg'))
    assert run(tmp_path / 'out', 'MaskFlownet_S', '--frames', tmp_path / 'nope', '-c', ckpt) == 2
    one_line(capsys, 'nope: --frames needs a folder of frames (not found)')
    assert not (tmp_path / 'out').exists()


def test_names_that_cannot_be_written_are_found_before_the_network_loads(frames, ckpt, tmp_path,
                                                                        capsys, no_network):
    """Each of these went through the checks and failed (or wrote one file twice) later."""
    a, b = frames / 'frame_1.png', frames / 'frame_2.png'
    pairs = tmp_path / 'pairs.txt'
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'sub').symlink_to('.')   # a link back to the output folder
    cases = [
        # sub/x is x: the second pair wrote over the first
        ('x', 'sub/x', ':2: writes %s' % (out / 'sub' / 'x.flo')),
        # a file and a folder of one name: 'cannot write (File exists)' after the network ran
        ('a', 'a.flo/b', ':2: writes into %s, which %s:1 writes as a file' % (out / 'a.flo', pairs)),
        ('x', 'y/', ':2: NAME y/: must name a file inside the output folder'),   # wrote y/.flo
        ('x', 'n' * 201, ':2: NAME: a part of it is longer than 200 bytes'),   # File name too long
        ('x', 'a\0b', ':2: NAME holds a NUL byte'),   # ValueError: embedded null byte
    ]
    for first, second, fragment in cases:
        pairs.write_bytes(('"%s" "%s" %s\n"%s" "%s" %s\n' % (a, b, first, b, a, second)).encode())
        assert run(out, 'MaskFlownet_S', '--pairs', pairs, '-c', ckpt) == 2, second
        one_line(capsys, fragment)
    assert sorted(os.listdir(out)) == ['sub']
    # a frame that is a broken link: the sequence would have gone on without it
    gap = tmp_path / 'gap'
    gap.mkdir()
    for name in ('1.png', '2.png', '4.png'):
        (gap / name).write_bytes(a.read_bytes())
    (gap / '3.png').symlink_to(tmp_path / 'gone.png')
    assert run(out, 'MaskFlownet_S', '--frames', gap, '-c', ckpt) == 2
    one_line(capsys, '%s: not a regular file (a broken link' % (gap / '3.png'))


@pytest.mark.parametrize('argv, message', [
    (['--frames', 'd', '--pairs', 'p'], 'give either --frames or --pairs, not both'),
    (['--frames', 'd', '--occ_mask', 'm.png'], '--occ_mask is a flag with --frames and --pairs'),
    (['--image_1', 'a', '--image_2', 'b', '--occ_mask'], '--occ_mask needs a path'),
    (['--image_1', 'a', '--image_2', 'b', '--format', 'npy'], '--format is for --frames'),
    (['--frames', 'd', '--format', 'tiff'], "invalid choice: 'tiff'"),
    (['--frames', 'd', '--batch', '0'], '--batch 0'),
])
def test_option_mistakes_are_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        predict_new_data.parse_args(['out', 'MaskFlownet_S', '-c', 'x'] + argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_a_flow_and_its_mask_are_written_together_or_not_at_all(frames, ckpt, tmp_path,
                                                              monkeypatch):
    from engine import predict
    written = []
    real = flowio.write_image

    def interrupt_the_second_mask(path, image):
        if written:
            raise KeyboardInterrupt
        written.append(path)
        real(path, image)
    monkeypatch.setattr(flowio, 'write_image', interrupt_the_second_mask)
    out = tmp_path / 'flows'
    with pytest.raises(KeyboardInterrupt):
        predict.predict_folder(str(out), 'MaskFlownet_S', str(ckpt), frames=str(frames),
                               occ_mask=True, batch=1)
    assert sorted(os.listdir(out)) == ['frame_1.flo', 'frame_1_occ.png', 'predict_settings.json']


def test_a_run_stopped_before_its_first_flow_leaves_no_record_to_refuse_other_settings(
        frames, ckpt, tmp_path, monkeypatch, capsys):
    """The settings record was written before the first prediction: a run stopped then left a
    folder of no flows that refused every later run with other settings."""
    from engine import api

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt
        yield
    out = tmp_path / 'flows'
    with monkeypatch.context() as patch:
        patch.setattr(api.Model, 'iter_predict', interrupt)
        assert run(out, 'MaskFlownet_S.yaml', '--frames', frames, '-c', ckpt) == 130
    assert os.listdir(out) == []
    capsys.readouterr()
    assert run(out, 'MaskFlownet_S.yaml', '--frames', frames, '-c', ckpt, '--format', 'npy') == 0
    assert '3 flows written' in capsys.readouterr().out
    assert sorted(os.listdir(out)) == ['frame_1.npy', 'frame_2.npy', 'frame_3.npy',
                                       'predict_settings.json']


def test_damaged_images_are_found_before_the_network_loads(frames, ckpt, tmp_path, capsys,
                                                           no_network):
    """Their headers were read at the start and the rest when their pair's turn came: the
    flows before them were written first, and the error named no list line."""
    data = (frames / 'frame_2.png').read_bytes()
    damaged = tmp_path / 'damaged'
    damaged.mkdir()
    for name in ('1.png', '2.png', '3.png'):
        (damaged / name).write_bytes(data)
    (damaged / '4.png').write_bytes(data[:len(data) // 2])   # cut short
    out = tmp_path / 'out'
    assert run(out, 'MaskFlownet_S', '--frames', damaged, '-c', ckpt) == 2
    one_line(capsys, '%s: truncated PNG file' % (damaged / '4.png'))
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF   # a byte of the image data: its chunk's CRC differs
    (damaged / '4.png').write_bytes(bytes(flipped))
    pairs = tmp_path / 'pairs.txt'
    pairs.write_text('damaged/1.png damaged/2.png\ndamaged/3.png damaged/4.png\n')
    assert run(out, 'MaskFlownet_S', '--pairs', pairs, '-c', ckpt) == 2
    one_line(capsys, '%s:2: IMAGE2 %s: corrupt (CRC mismatch in its IDAT chunk) PNG file'
             % (pairs, damaged / '4.png'))
    assert not out.exists()


def test_an_output_that_is_a_special_file_is_refused_before_the_network_loads(
        frames, ckpt, tmp_path, capsys, no_network):
    """The folder check had its own copy of the output checks, without this one."""
    out = tmp_path / 'out'
    out.mkdir()
    os.mkfifo(out / 'frame_2.flo')
    assert run(out, 'MaskFlownet_S', '--frames', frames, '-c', ckpt) == 2
    one_line(capsys, '%s: not a regular file' % (out / 'frame_2.flo'))
