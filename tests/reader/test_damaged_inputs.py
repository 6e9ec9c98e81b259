"""Damaged inputs are refused, not only truncated ones: a JPEG whose scan is damaged (libjpeg
fills it with grey and only warns), a PNG with a bad chunk, a video frame ffmpeg had to
conceal, a video that ends before the frame count its container announces."""
import re
import subprocess

import cv2
import imageio_ffmpeg
import numpy as np
import pytest

import predict_new_data
from common.errors import UserError
from reader import flowio, video

PICTURE = (np.random.default_rng(0).uniform(0, 255, (64, 96, 3))).astype(np.uint8)


def encoded(ext):
    return bytearray(cv2.imencode(ext, PICTURE)[1].tobytes())


def damaged_jpeg(path):
    data = encoded('.jpg')
    middle = len(data) // 2
    data[middle:middle + 40] = bytes(40)   # inside the scan: the file still ends with FF D9
    path.write_bytes(bytes(data))
    return path


def test_a_jpeg_with_a_damaged_scan_is_refused_with_the_decoders_words(tmp_path, capfd):
    with pytest.raises(UserError) as error:
        flowio.read_image(damaged_jpeg(tmp_path / 'bad.jpg'))
    assert str(error.value).startswith('%s: damaged image (the decoder says: Corrupt JPEG data'
                                       % (tmp_path / 'bad.jpg'))
    assert capfd.readouterr().err == ''   # the warning is in the message, not on the terminal
    good = tmp_path / 'good.jpg'
    good.write_bytes(bytes(encoded('.jpg')))
    assert flowio.read_image(good).shape == (64, 96, 3)


def test_a_png_with_a_bad_chunk_is_corrupt_not_truncated(tmp_path):
    data = encoded('.png')
    data[60] ^= 0xFF   # inside the first IDAT chunk
    (tmp_path / 'bad.png').write_bytes(bytes(data))
    with pytest.raises(UserError, match=r'bad.png: corrupt \(CRC mismatch in its IDAT chunk\) PNG'):
        flowio.read_image(tmp_path / 'bad.png')
    (tmp_path / 'cut.png').write_bytes(bytes(encoded('.png')[:-20]))
    with pytest.raises(UserError, match=r'cut.png: truncated PNG file'):
        flowio.read_image(tmp_path / 'cut.png')
    (tmp_path / 'tail.png').write_bytes(bytes(encoded('.png')) + b'junk')
    with pytest.raises(UserError, match=r'tail.png: corrupt \(4 bytes after its end\) PNG'):
        flowio.read_image(tmp_path / 'tail.png')


def test_predict_new_data_refuses_a_damaged_jpeg_before_the_network_loads(tmp_path, capsys):
    bad = damaged_jpeg(tmp_path / 'a.jpg')
    (tmp_path / 'b.jpg').write_bytes(bytes(encoded('.jpg')))
    out = tmp_path / 'flow.flo'
    assert predict_new_data.main([str(out), 'MaskFlownet_S.yaml', '--image_1', str(bad),
                                  '--image_2', str(tmp_path / 'b.jpg'), '-c', 'none']) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: %s: damaged image' % bad) and err.count('\n') == 1
    assert not out.exists()


# --- videos -----------------------------------------------------------------------------------

FRAMES = 30


def encode(path, *options):
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), '-loglevel', 'error', '-y', '-f', 'lavfi',
                    '-i', 'testsrc=size=160x120:rate=10', '-frames:v', str(FRAMES), '-c:v',
                    'libx264', '-pix_fmt', 'yuv420p', '-threads', '1', *options, str(path)],
                   check=True, timeout=60)
    return path


def decode(path):
    """(frames read, [(frame index, the decoder's lines)]) reading ``path`` as the tools do."""
    damaged = []
    with video.open_video(path) as capture:
        for index in range(10 * FRAMES):
            with flowio.decoder_messages() as messages:
                ok, _ = capture.read()
            if messages and ok:
                damaged.append((index, messages))
            if not ok:
                return index, damaged
    raise AssertionError('no end')


@pytest.fixture(scope='module')
def videos(tmp_path_factory):
    """good.mp4; mid.mp4, whose frames all decode but one only with ffmpeg's concealment; and
    cut.mp4, whose container announces 30 frames but whose data ends early."""
    folder = tmp_path_factory.mktemp('videos')
    good = encode(folder / 'good.mp4', '-g', '30')
    data = good.read_bytes()
    for percent in range(40, 95, 3):   # flip bits inside a later frame's slice data
        offset = len(data) * percent // 100
        mid = folder / 'mid.mp4'
        mid.write_bytes(data[:offset] + bytes(b ^ 1 for b in data[offset:offset + 8])
                        + data[offset + 8:])
        count, damaged = decode(mid)
        if count == FRAMES and damaged:
            break
    else:
        pytest.fail('no damage found that leaves every frame decodable')
    whole = encode(folder / 'faststart.mp4', '-movflags', '+faststart').read_bytes()
    cut = folder / 'cut.mp4'
    cut.write_bytes(whole[:len(whole) * 6 // 10])
    return {'good': good, 'mid': mid, 'cut': cut, 'damaged_frame': damaged[0][0]}


def test_the_test_videos_are_what_they_claim(videos):
    assert decode(videos['good']) == (FRAMES, [])
    with video.open_video(videos['cut']) as capture:
        assert video.frames_announced(capture) == FRAMES
    assert decode(videos['cut'])[0] < FRAMES


def run_video(tmp_path, golden_checkpoint, source, *extra):
    out = tmp_path / 'flow.mp4'
    status = predict_new_data.main([str(out), 'MaskFlownet_S.yaml', '--video_filepath',
                                    str(source), '-c', str(golden_checkpoint('MaskFlownet_S')),
                                    '--batch', '8'] + list(extra))
    return status, out


def test_a_video_frame_the_decoder_had_to_conceal_is_an_error_naming_it(
        tmp_path, videos, golden_checkpoint, capsys):
    status, out = run_video(tmp_path, golden_checkpoint, videos['mid'])
    assert status == 2 and not out.exists()
    err = capsys.readouterr().err
    assert err.startswith('error: %s: frame %d is damaged; the decoder says: '
                          % (videos['mid'], videos['damaged_frame'])) and err.count('\n') == 1


def test_a_video_shorter_than_announced_is_an_error_or_with_the_option_a_warning(
        tmp_path, videos, golden_checkpoint, capsys):
    status, out = run_video(tmp_path, golden_checkpoint, videos['cut'])
    assert status == 2 and not out.exists()
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and '--accept_short_video' in err
    assert re.search(r'announces 30 frames but only \d+ decode|frame \d+ is damaged', err), err
    status, out = run_video(tmp_path, golden_checkpoint, videos['cut'], '--accept_short_video')
    assert status == 0 and out.exists()
    err = capsys.readouterr().err
    assert 'warning: ' in err and 'announces 30 frames but only' in err
    with video.open_video(out) as capture:
        written = video.frames_announced(capture)
    assert 1 <= written < FRAMES - 1
