"""Plain helpers shared by the tests: paths, golden weights, fake dataset trees, small builders
and checks. Fixtures live in tests/conftest.py; test files import from here, never from each
other (``from tests.helpers import ...``)."""
import json
import re
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import flow_vis
import imageio_ffmpeg
import mxnet as mx
import numpy as np
import pytest

from reader import kitti, video

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / 'tests' / 'data'
PARITY = DATA / 'parity'
DATASETS = DATA / 'datasets'            # real files of each dataset format (PROVENANCE.md)
RUNLOGS = DATA / 'runlogs'
SAMPLE = REPO / 'sample_data'           # the bundled sample datasets
NETWORKS = ('MaskFlownet_S', 'MaskFlownet')
# NETWORKS for tests whose MaskFlownet case takes over a second: that case is marked slow.
NETWORKS_FULL_SLOW = ('MaskFlownet_S', pytest.param('MaskFlownet', marks=pytest.mark.slow))


# ---------------------------------------------------------------- golden weights and outputs

def manifest(network):
    with open(PARITY / ('%s.manifest.json' % network)) as f:
        return [(entry['name'], tuple(entry['shape'])) for entry in json.load(f)]


def deterministic_weight(name, shape):
    """The weights the golden files were computed with: a normal draw seeded by the crc32 of
    the parameter name, scaled by sqrt(2 / fan-in) (He) for tensors of 2 or more dimensions and
    by 0.01 for the others."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    scale = np.sqrt(2.0 / np.prod(shape[1:])) if len(shape) >= 2 else 0.01
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def write_deterministic_checkpoint(network, path):
    mx.nd.save(str(path), {name: mx.nd.array(deterministic_weight(name, shape))
                           for name, shape in manifest(network)})
    return path


def assert_close(actual, expected, atol, rtol, what):
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, '%s: shape %s, golden %s' % (what, actual.shape, expected.shape)
    excess = np.abs(actual - expected) - (atol + rtol * np.abs(expected))
    worst = np.unravel_index(np.argmax(excess), excess.shape) if excess.size else ()
    assert excess.size == 0 or excess.max() <= 0, (
        '%s: max |diff| %.3g at %s exceeds atol %g + rtol %g' %
        (what, np.abs(actual - expected).max(), worst, atol, rtol))


# ---------------------------------------------------------------- predict_new_data.py in this process

def run_predict_cli(args):
    """predict_new_data.py's main() in this process; returns its exit status."""
    import predict_new_data
    return predict_new_data.main([str(a) for a in args])


def expect_cli_error(capsys, args, *fragments):
    """The CLI exits 2 with exactly one stderr line starting 'error: ' that holds fragments."""
    assert run_predict_cli(args) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and err.count('\n') == 1, err
    for fragment in fragments:
        assert str(fragment) in err
    return err


def assert_one_line_error(excinfo, path):
    """The UserError names ``path`` on a single line."""
    message = str(excinfo.value)
    assert str(path) in message
    assert '\n' not in message


# ---------------------------------------------------------------- fake dataset trees

CHAIRS2 = DATASETS / 'flyingchairs2_crop50' / 'train'
ALLEY = DATASETS / 'sintel' / 'training'
KITTI_FILES = DATASETS / 'kitti2015' / 'training'


def link(target, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(Path(target).resolve())
    return path


def touch(path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


def names(samples):
    return [s.name for s in samples]


def fake_sintel(root, sequences, passes=('clean', 'final')):
    """A Sintel training tree whose sequences all hold the alley_1 pair (frames 2 and 3)."""
    for sequence in sequences:
        for pass_name in passes:
            for frame in ('frame_0002.png', 'frame_0003.png'):
                link(ALLEY / pass_name / 'alley_1' / frame,
                     root / 'training' / pass_name / sequence / frame)
        link(ALLEY / 'flow' / 'alley_1' / 'frame_0002.flo',
             root / 'training' / 'flow' / sequence / 'frame_0002.flo')
        link(ALLEY / 'invalid' / 'alley_1' / 'frame_0002.png',
             root / 'training' / 'invalid' / sequence / 'frame_0002.png')
    return root


def fake_kitti(root, indices, edition='2015', split='training'):
    images = root / split / kitti.IMAGE_FOLDERS[edition]
    for index in indices:
        link(KITTI_FILES / 'image_2' / '000000_10.png', images / f'{index:06d}_10.png')
        link(KITTI_FILES / 'image_2' / '000000_11.png', images / f'{index:06d}_11.png')
        if split == 'training':
            link(KITTI_FILES / 'flow_occ' / '000000_10.png', root / split / 'flow_occ' / f'{index:06d}_10.png')
    return root


def fake_hd1k(root, frames_per_sequence):
    """HD1K layout over the KITTI files (the same 16-bit flow format): one flow per frame."""
    for sequence, count in enumerate(frames_per_sequence):
        for frame in range(count):
            image = KITTI_FILES / 'image_2' / ('000000_10.png' if frame % 2 == 0 else '000000_11.png')
            link(image, root / 'hd1k_input' / 'image_2' / f'{sequence:06d}_{frame:04d}.png')
            link(KITTI_FILES / 'flow_occ' / '000000_10.png',
                 root / 'hd1k_flow_gt' / 'flow_occ' / f'{sequence:06d}_{frame:04d}.png')
    return root


# ---------------------------------------------------------------- training runs and their logs

def write_small_chairs_config(folder):
    """small.yaml: FlyingChairs with 128 x 192 crops, to keep CLI training tests fast and lean."""
    (folder / 'small.yaml').write_text('dataset: chairs\norig_shape: [128, 192]\n'
                                       'target_shape: [128, 192]\n')


def log_lines(path):
    return [re.sub(r'^\[\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\] ', '', line)
            for line in Path(path).read_text().splitlines()]


def event_reader(folder):
    """TensorBoard's own reader of the event files in ``folder``, loaded."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    reader = EventAccumulator(str(folder), size_guidance={'scalars': 0, 'images': 0})
    reader.Reload()
    return reader


def steps_and_values(reader, tag):
    return [(s.step, s.value) for s in reader.Scalars(tag)]


ORIGINAL_LOG = RUNLOGS / 'original_restarts.log'   # the original's published format
PROJECT_LOG = RUNLOGS / 'project_run.log'


def series_values(parsed, tag):
    """[(steps, value)] of one series of a parsed run log."""
    return [(steps, value) for steps, value, _ in parsed.series[tag]]


# ---------------------------------------------------------------- validation

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


# ---------------------------------------------------------------- checkpoints

def small_pair(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (64, 128, 3), dtype=np.uint8) for _ in range(2)]


def write_modified(path, network, change):
    arrays = {name: mx.nd.zeros(shape) for name, shape in manifest(network)}
    change(arrays)
    mx.nd.save(str(path), arrays)
    return path


# ---------------------------------------------------------------- videos

HEIGHT, WIDTH, FRAMES, FPS = 64, 96, 6, 12   # an fps no default would produce
CODEC_TOL = 12   # mean |diff| on uint8 after an H.264 round trip


def moving_pattern(count, height=HEIGHT, width=WIDTH):
    """Frames of a smooth random texture that speeds up, so each pair has its own flow."""
    rng = np.random.default_rng(0)
    texture = cv2.resize(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8), (4 * width, 4 * height))
    frames = []
    for k in range(count):
        dx, dy = 3 * k + k * k, 2 * k
        frames.append(np.ascontiguousarray(texture[20 + dy:20 + dy + height, 20 + dx:20 + dx + width]))
    return frames


def write_clip(path, frames, fps=FPS):
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'mp4v'), fps, (width, height))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def read_video(path):
    """All frames of a video as OpenCV decodes them (BGR)."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


def flow_colours(pipe, img1, img2):
    return flow_vis.flow_to_color(pipe.predict_pair(img1, img2)[0]).astype(float)


def mean_diff(a, b):
    return np.abs(np.asarray(a, float) - np.asarray(b, float)).mean()


class FakeCapture:
    """A cv2.VideoCapture stand-in that reports no frame rate or count and yields given frames."""

    def __init__(self, frames):
        self.frames = list(frames)

    def isOpened(self):
        return True

    def read(self):
        return (True, self.frames.pop(0)) if self.frames else (False, None)

    def get(self, prop):
        return float('nan') if prop == cv2.CAP_PROP_FPS else 0.0

    def release(self):
        pass


# ---------------------------------------------------------------- command lines in a fresh process

# Each command-line tool, given an input that does not exist: records whether MXNet was
# loaded when the process set-up ran (it must not be), then exits with its one-line error.
CLI_SET_UP = '''
import sys
sys.path.insert(0, %r)
from common import devices
calls = []
devices.keep_freed_memory = lambda: calls.append('mxnet' in sys.modules)
import {module}
try:
    status = {module}.main({argv!r})
except SystemExit as exit:
    status = exit.code
print(calls, status)
''' % str(REPO)


def set_up_calls_and_status(module, argv, cwd):
    """Runs ``module.main(argv)`` in a fresh process; its stdout's last two words: whether MXNet
    was loaded when the process set-up ran (``[False]``: it was not), then the exit status;
    and stdout and the end of stderr, to show when they are not as expected."""
    code = CLI_SET_UP.format(module=module, argv=argv)
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         cwd=cwd, timeout=120)
    return out.stdout.split()[-2:], (out.stdout, out.stderr[-2000:])


class FakePipe:
    """What submissions need of a pipeline: devices and predict()."""
    ctx = [None]

    def predict(self, img1s, img2s, batch_size=1, resize=None):
        for img in img1s:
            yield np.zeros(img.shape[:2] + (2,), np.float32), np.ones(img.shape[:2] + (1,)), None


VIDEO_FRAMES = 30   # frames of the generated test videos


def encode_test_video(path, *options):
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), '-loglevel', 'error', '-y', '-f', 'lavfi',
                    '-i', 'testsrc=size=160x120:rate=10', '-frames:v', str(VIDEO_FRAMES), '-c:v',
                    'libx264', '-pix_fmt', 'yuv420p', '-threads', '1', *options, str(path)],
                   check=True, timeout=60)
    return path


def decode_video(path):
    """(frames read, [(frame index, the decoder's lines)]) reading ``path`` as the tools do."""
    damaged = []
    with video.open_video(path) as capture:
        for index in range(10 * VIDEO_FRAMES):
            with video.frame_messages() as messages:
                ok, _ = capture.read()
            if messages and ok:
                damaged.append((index, messages))
            if not ok:
                return index, damaged
    raise AssertionError('no end')


TEST_PICTURE = (np.random.default_rng(0).uniform(0, 255, (64, 96, 3))).astype(np.uint8)


def encoded_picture(ext):
    return bytearray(cv2.imencode(ext, TEST_PICTURE)[1].tobytes())


def damaged_jpeg(path):
    data = encoded_picture('.jpg')
    middle = len(data) // 2
    data[middle:middle + 40] = bytes(40)   # inside the scan: the file still ends with FF D9
    path.write_bytes(bytes(data))
    return path


def one_line(capsys, *fragments):
    """The stderr of a command that failed as the contract says: one line 'error: ...' holding
    every fragment."""
    err = capsys.readouterr().err
    assert err.startswith('error: ') and err.count('\n') == 1, err
    for fragment in fragments:
        assert fragment in err, err
    return err
