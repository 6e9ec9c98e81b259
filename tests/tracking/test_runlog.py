"""tracking/runlog.py: the run log's held lines (a run that never started leaves no log) and
its sinks."""
import pytest

from common.errors import UserError
from tracking.runlog import RunLog


class ListSink:
    def __init__(self):
        self.lines, self.closed = [], False

    def add_line(self, message, wall_time):
        self.lines.append(message)

    def add_scalar(self, tag, value, steps):
        self.lines.append((tag, value, steps))

    def add_validation_images(self, steps, predict):
        self.lines.append(('images', steps))

    def close(self):
        self.closed = True


def test_held_lines_are_written_on_release_and_never_without_it(tmp_path):
    sink = ListSink()
    log = RunLog(str(tmp_path / 'held.log'), sinks=[sink], hold=True)
    log.log('start=0, train=1')
    log.learning_rate(1, 1e-4)   # events of a run that has not started: none
    assert not (tmp_path / 'held.log').exists() and sink.lines == []
    log.release()
    log.log('steps=1, epe=2.0, total_time=0.00')
    log.learning_rate(1, 1e-4)
    log.close()
    text = (tmp_path / 'held.log').read_text().splitlines()
    assert [line.partition('] ')[2] for line in text] == ['start=0, train=1',
                                                          'steps=1, epe=2.0, total_time=0.00']
    assert sink.lines == ['start=0, train=1', 'steps=1, epe=2.0, total_time=0.00',
                          ('train/lr', 1e-4, 1)] and sink.closed
    never = RunLog(str(tmp_path / 'never.log'), hold=True)
    never.log('start=0, train=1')
    never.close()
    assert not (tmp_path / 'never.log').exists()


def test_a_log_that_cannot_be_opened_on_release_stays_held(tmp_path):
    (tmp_path / 'logs').write_text('a file where the log folder would go')
    log = RunLog(str(tmp_path / 'logs' / 'run.log'), hold=True)
    log.log('start=0, train=1')
    with pytest.raises(UserError, match='cannot write the log'):
        log.release()
    assert not log.released   # a stopped= line then goes nowhere instead of failing
    log.close()
