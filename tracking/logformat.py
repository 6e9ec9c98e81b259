"""The run log's line format, in the original's form: ``[YYYY/MM/DD HH:MM:SS] key=value, ...``,
one line per event; the TensorBoard tags each kind of line maps to; reading logs back
(``read_log``), for this project's logs and the original's published ones alike; and the
moving average that training lines report.
"""
import datetime
import os
import re
from dataclasses import dataclass, field

from common.errors import UserError

TIME_FORMAT = '%Y/%m/%d %H:%M:%S'
_LINE = re.compile(r'^\[(?P<time>\d{4}/\d\d/\d\d \d\d:\d\d:\d\d)\] (?P<body>.*)$')
_NOT_IN_TAGS = re.compile(r'[^-/\w.]')   # what TensorBoard writers replace by '_'

# TensorBoard tags; the events-only ones (no log line holds them) are written by the run's
# learning-rate and validation-image events (see tracking.events).
TRAIN_PREFIX = 'train/'           # + a training line's metric: train/epe
STEP_TIME_TAG = 'train/seconds_per_step'   # a training line's total_time (a moving average)
VALIDATION_PREFIX = 'val/'        # + a validation line's key: val/sintel.clean
LEARNING_RATE_TAG = 'train/lr'
FLOW_IMAGE_TAG = 'val/flow'
OCC_MASK_IMAGE_TAG = 'val/occ_mask'
START_TEXT_TAG = 'run/start'      # the header line of each start: start=, train=, batch=, ...
OPTIONS_TEXT_TAG = 'run/options'  # the line after it: the command's options or config
NOTE_TEXT_TAG = 'run/note'        # any other line: branched_from=..., stopped=...


def format_pairs(pairs):
    return ', '.join('%s=%s' % (k, v) for k, v in pairs)


# --- reading logs back --------------------------------------------------------------------

def parse_pairs(body):
    """``'steps=2, epe=1.5'`` -> [('steps', '2'), ('epe', '1.5')]; ValueError if not pairs."""
    pairs = []
    for part in body.split(', '):
        key, sep, value = part.partition('=')
        if not sep or not key or ' ' in key:
            raise ValueError('not key=value pairs')
        pairs.append((key, value))
    return pairs


def line_scalars(pairs):
    """(steps, [(tag, value)]) of a ``steps=N, ...`` line; (None, []) for any other line.

    A training line (it has ``total_time``) gives ``train/<metric>`` and
    ``train/seconds_per_step``; a validation line gives ``val/<key>`` for each of its keys
    (see tag_name).
    ValueError for a steps line whose steps or values are not numbers.
    """
    if not pairs or pairs[0][0] != 'steps':
        return None, []
    steps = int(pairs[0][1])
    if not 0 <= steps < 2 ** 63:   # TensorBoard keeps steps in 64 bits
        raise ValueError('steps=%s: out of range' % pairs[0][1])
    rest = pairs[1:]
    training = any(key == 'total_time' for key, _ in rest)
    scalars = []
    for key, value in rest:
        if key == 'total_time':
            tag = STEP_TIME_TAG
        else:
            tag = (TRAIN_PREFIX if training else VALIDATION_PREFIX) + tag_name(key)
        scalars.append((tag, float(value)))
    return steps, scalars


def tag_name(key):
    """A log key as a TensorBoard tag: ``kitti.2015:fl_all`` -> ``kitti.2015/fl_all``."""
    return _NOT_IN_TAGS.sub('_', key.replace(':', '/'))


def text_tag(first_key, after_start):
    """The text tag of a line that is not a ``steps=`` line, by its first key."""
    if first_key == 'start':
        return START_TEXT_TAG
    return OPTIONS_TEXT_TAG if after_start else NOTE_TEXT_TAG


def loose_pairs(body):
    """The ``key=value`` parts of a header or note line, whose values may hold ', '."""
    return dict(part.partition('=')[::2] for part in body.split(', ') if '=' in part)


@dataclass
class Start:
    """One (re)start of a run within its log: the start line and the options line after it."""
    steps: int
    line_number: int
    fields: dict                                  # the start line's key=value pairs
    options: str = ''                             # the line after it, as written


@dataclass
class ParsedLog:
    """A run log read back: the scalar series by tag, its starts and what could not be read."""
    path: str
    run_id: str
    series: dict = field(default_factory=dict)   # tag -> [(steps, value, wall time s)]
    starts: list = field(default_factory=list)   # [Start]
    texts: list = field(default_factory=list)    # [(tag, steps, line body, wall time s)]
    bad_lines: list = field(default_factory=list)   # [(line number, reason)]
    superseded: int = 0   # points dropped because a restart went back before them

    def points(self):
        return sum(len(v) for v in self.series.values())


def read_log(path, run_id=None):
    """Read a run log into a ParsedLog; unreadable lines are counted, never fatal.

    A ``start=N`` line that follows logged steps beyond N is a resume from the checkpoint at
    step N: the points after N logged before it are dropped (counted in ``superseded``), as
    the resumed run logs those steps again. A key logged twice at one step within one start
    (the original's KITTI runs logged EPE, then the outlier share, under the same names) gets
    ``_2`` for its second value: ``val/kitti.12_2``.
    """
    name = os.path.basename(path)
    parsed = ParsedLog(path, run_id or (name[:-len('.log')] if name.endswith('.log') else name))
    try:
        with open(path, encoding='utf-8', errors='replace') as f:
            lines = f.read().splitlines()
    except OSError as error:
        raise UserError('%s: cannot read (%s)' % (path, error.strerror or error)) from None
    seen = set()   # (tag, steps) logged since the last start
    previous_start = None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        match = _LINE.match(line)
        if match is None:
            parsed.bad_lines.append((number, 'no [YYYY/MM/DD HH:MM:SS] time stamp'))
            continue
        body = match['body']
        first_key = body.partition('=')[0]
        try:
            wall_time = datetime.datetime.strptime(match['time'], TIME_FORMAT).timestamp()
            if first_key == 'steps':
                steps, scalars = line_scalars(parse_pairs(body))
            else:
                fields = loose_pairs(body)
                start_steps = int(fields['start']) if first_key == 'start' else None
        except ValueError as error:
            parsed.bad_lines.append((number, str(error)))
            continue
        if first_key != 'steps':
            after_start = previous_start == number - 1
            step = start_steps if start_steps is not None else (
                parsed.starts[-1].steps if parsed.starts else 0)
            parsed.texts.append((text_tag(first_key, after_start), step, body, wall_time))
            if start_steps is not None:
                parsed.superseded += _drop_after(parsed, start_steps)
                parsed.starts.append(Start(start_steps, number, fields))
                previous_start = number
                seen = set()
            elif after_start:
                parsed.starts[-1].options = body
            continue
        for tag, value in scalars:
            tag = _unique_tag(tag, steps, seen)
            seen.add((tag, steps))
            parsed.series.setdefault(tag, []).append((steps, value, wall_time))
    return parsed


def _unique_tag(tag, steps, seen):
    """``tag``, or ``tag_2``, ``tag_3``, ... if it was logged at ``steps`` already."""
    unique, count = tag, 1
    while (unique, steps) in seen:
        count += 1
        unique = '%s_%d' % (tag, count)
    return unique


def _drop_after(parsed, steps):
    dropped = 0
    for tag, points in parsed.series.items():
        kept = [p for p in points if p[0] <= steps]
        dropped += len(points) - len(kept)
        parsed.series[tag] = kept
    return dropped


class MovingAverage:
    """Exponential moving average with bias correction, as the original's training log reports
    (``epe`` and ``total_time`` of a training line); ``curves.smooth`` draws with it too."""

    def __init__(self, ratio=0.95):
        self.ratio = ratio
        self.total = 0.
        self.weight = 1e-8

    def update(self, value):
        self.total = self.total * self.ratio + value
        self.weight = self.weight * self.ratio + 1

    @property
    def average(self):
        return self.total / self.weight
