"""tracking/progress.py: training's live line, drawn only on a terminal (a stream whose isatty()
is True here), and nothing at all otherwise; the run log's lines unchanged either way."""
import io
import re
import sys

import cv2
import numpy as np
import pytest

import main as main_cli
from reader import flowio
from tracking.progress import TrainingProgress, duration


class Terminal(io.StringIO):
    def isatty(self):
        return True


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def shown(stream):
    """What a terminal shows last: the text after the last carriage return, escapes removed."""
    return re.sub(r'\x1b\[K', '', stream.getvalue().rsplit('\r', 1)[-1])


@pytest.mark.parametrize('seconds, text', [
    (0, '0s'), (44.6, '45s'), (250, '4m10s'), (3900, '1h05m'), (2 * 86400 + 3 * 3600 + 59, '2d03h'),
    (None, '?'), (float('nan'), '?')])
def test_durations(seconds, text):
    assert duration(seconds) == text


def test_the_line_says_step_speed_epe_lr_and_the_times_to_come(monkeypatch):
    monkeypatch.setenv('COLUMNS', '200')
    stream, clock = Terminal(), Clock()
    progress = TrainingProgress(100, 1000, validation_steps=250, checkpoint_steps=500,
                                stream=stream, clock=clock)
    epes = [5.0, 4.0, 3.0, 2.0]
    for k, epe in enumerate(epes):
        clock.now += 1
        # the first step of a start builds the graphs: its 9 s are not a step's time
        progress.step(101 + k, 9.0 if k == 0 else 0.4, epe, 1e-4)
    # steps 102 to 104 took 0.4 s: 2.5 steps/s; next validation at 250 (146 steps, 58.4 s),
    # checkpoint at 500 (396 steps, 158.4 s), end at 1000 (896 steps, 358.4 s)
    assert shown(stream) == ('step 104/1,000  2.50 steps/s  epe 3.500  lr 1.0e-04  val in 58s  '
                             'ckpt in 2m38s  end in 5m58s')
    # with a validation's duration known, the end adds the 4 validations left (250 to 1000)
    progress.validation_took(20.0)
    clock.now += 1
    progress.step(105, 0.4, 3.0, 1e-4)
    assert shown(stream).endswith('end in %s' % duration(895 * 0.4 + 4 * 20))


def test_the_line_is_redrawn_at_most_five_times_a_second_and_wiped_before_other_output():
    stream, clock = Terminal(), Clock()
    progress = TrainingProgress(0, None, 10, 10, stream=stream, clock=clock)
    progress.step(1, 1.0, 2.0, None)
    progress.step(2, 1.0, 2.0, None)   # at the same time: not drawn again
    assert stream.getvalue().count('\r') == 1 and 'step 1  - steps/s  epe 2.000' in stream.getvalue()
    clock.now = 0.3
    progress.step(3, 1.0, 2.0, None)
    assert shown(stream).startswith('step 3  1.00 steps/s')
    progress.clear()
    assert stream.getvalue().endswith('\r\x1b[K')
    before = stream.getvalue()
    progress.clear()
    progress.close()
    assert stream.getvalue() == before   # nothing drawn: nothing to wipe


def test_nothing_is_drawn_when_the_stream_is_not_a_terminal():
    stream = io.StringIO()
    progress = TrainingProgress(0, 100, 10, 10, stream=stream)
    for steps in range(1, 5):
        progress.step(steps, 0.5, 1.0, 1e-4)
    progress.close()
    assert stream.getvalue() == '' and not progress.enabled


def test_a_narrow_terminal_drops_the_least_needed_parts_first(monkeypatch):
    progress = TrainingProgress(0, 10 ** 6, 10, 10, stream=Terminal())
    for steps in (1, 2):
        progress.step(steps, 0.5, 123.456, 1e-4)
    full = progress.line(2, 1e-4)
    assert full == ('step 2/1,000,000  2.00 steps/s  epe 123.456  lr 1.0e-04  val in 4s  '
                    'ckpt in 4s  end in 5d18h')
    assert progress.line(2, 1e-4, len(full)) == full
    assert progress.line(2, 1e-4, 70) == ('step 2/1,000,000  2.00 steps/s  epe 123.456  val in 4s  '
                                          'end in 5d18h')
    assert progress.line(2, 1e-4, 45) == 'step 2/1,000,000  2.00 steps/s  end in 5d18h'
    assert progress.line(2, 1e-4, 20) == 'step 2/1,000,000  2.'
    monkeypatch.setenv('COLUMNS', '46')
    stream = Terminal()
    progress.stream = stream
    progress.enabled = True
    progress._last_draw = None
    progress.step(3, 0.5, 1.0, 1e-4)
    assert shown(stream) == 'step 3/1,000,000  2.00 steps/s  end in 5d18h'


def log_body(text):
    return [re.sub(r'^\[\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\] ', '', line) for line in text.splitlines()
            if line.startswith('[')]


@pytest.mark.slow
def test_training_on_a_terminal_shows_the_line_and_elsewhere_nothing(tmp_path, monkeypatch,
                                                                      capsys):
    # two generated 64 x 96 pairs as a custom dataset: small and fast
    rng = np.random.default_rng(0)
    for k in range(3):
        cv2.imwrite(str(tmp_path / ('%d.png' % k)), rng.integers(0, 256, (64, 96, 3), np.uint8))
    flowio.write_flo(tmp_path / 'f.flo', rng.uniform(-3, 3, (64, 96, 2)).astype(np.float32))
    (tmp_path / 'pairs.txt').write_text('0.png 1.png f.flo\n1.png 2.png f.flo\n')
    (tmp_path / 'small.yaml').write_text('dataset: custom\ntrain_list: pairs.txt\n'
                                         'validation_list: pairs.txt\nbatch_size: 1\n')
    monkeypatch.chdir(tmp_path)
    train = ['MaskFlownet_S.yaml', '--dataset_cfg', 'small.yaml', '--debug', '--seed', '1',
             '--no_tensorboard']
    assert main_cli.main(train + ['--max_steps', '3']) == 0
    plain = capsys.readouterr()
    assert '\r' not in plain.err and 'steps/s' not in plain.err

    terminal = Terminal()
    monkeypatch.setattr(sys, 'stderr', terminal)
    assert main_cli.main(train + ['--max_steps', '3']) == 0
    drawn = terminal.getvalue()
    # --debug: 4 steps a schedule of 400000, here 3; validation and checkpoint every 2 steps
    lines = [part for part in re.split(r'\r', drawn) if part.startswith('step ')]
    assert [line.split('  ')[0] for line in lines][-1] == 'step 3/3'
    assert re.fullmatch(r'step 3/3  [0-9.]+ steps/s  epe [0-9.]+  lr 1\.0e-04  val in \S+  '
                        r'ckpt in \S+  end in \S+\x1b\[K', lines[-1]), lines[-1]
    assert drawn.endswith('\r\x1b[K')   # wiped before the last lines were printed
    # the run log's lines are the same with and without the terminal
    steps = lambda out: [re.sub(r'(?<!steps)=([-0-9.e+]+|nan|inf)(?=,|$)', '=x', line)
                         for line in log_body(out) if line.startswith('steps=')]
    pooled = ', '.join('custom.pairs:%s=x' % m for m in (
        'epe_all', 'above1px', 'above3px', 'above5px', 'epe_s0-10', 'epe_s10-40', 'epe_s40+'))
    assert steps(capsys.readouterr().out) == steps(plain.out) == [
        'steps=1, epe=x, total_time=x', 'steps=1, custom.pairs=x', 'steps=1, ' + pooled,
        'steps=2, epe=x, total_time=x', 'steps=2, custom.pairs=x', 'steps=2, ' + pooled,
        'steps=3, epe=x, total_time=x']
