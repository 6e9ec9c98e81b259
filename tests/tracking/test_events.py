"""tracking/events.py: TensorBoard events written live beside the run log: resumes, and
failures that never stop the run (the events of a real training run: tests/engine/test_train.py)."""
from tracking.events import EventSink
from tracking.logformat import read_log
from tracking.runlog import RunLog, events_folder
from tests.helpers import event_reader, steps_and_values


def write_run(log_path, start, steps_and_epe):
    log = RunLog(str(log_path), sinks=[EventSink(events_folder(str(log_path)))])
    log.log('start=%d, train=8, val=1, host=h, batch=1' % start)
    log.log("seed=1")
    for steps, epe in steps_and_epe:
        log.log('steps=%d, epe=%s, total_time=0.50' % (steps, epe))
    log.close()


def test_a_resume_hides_the_steps_it_redoes_as_the_log_reader_drops_them(tmp_path):
    log_path = tmp_path / 'logs' / 'abcJan01-0000.log'
    write_run(log_path, 0, [(1, 9.0), (2, 8.0), (3, 7.0), (4, 6.0)])
    write_run(log_path, 2, [(3, 5.5), (4, 5.0), (5, 4.5)])   # resumed from the step-2 checkpoint
    expected = [(1, 9.0), (2, 8.0), (3, 5.5), (4, 5.0), (5, 4.5)]
    assert steps_and_values(event_reader(events_folder(str(log_path))), 'train/epe') == expected
    parsed = read_log(str(log_path))
    assert [(s, v) for s, v, _ in parsed.series['train/epe']] == expected
    assert parsed.superseded == 4   # epe and seconds_per_step at steps 3 and 4


def test_events_that_cannot_be_written_warn_once_and_the_log_goes_on(tmp_path, capsys):
    log_path = tmp_path / 'run.log'
    (tmp_path / 'tensorboard').write_text('a file where the events folder would go')
    log = RunLog(str(log_path), sinks=[EventSink(events_folder(str(log_path)))])
    log.log('start=0, train=1, val=1, host=h, batch=1')
    log.log('steps=1, epe=2.5, total_time=0.00')
    log.learning_rate(1, 1e-4)
    log.close()
    assert log_path.read_text().count('\n') == 2
    err = capsys.readouterr().err
    assert err.count('warning: TensorBoard events') == 1 and err.count('\n') == 1


def test_a_failing_image_prediction_warns_and_training_goes_on(tmp_path, capsys):
    log = RunLog(str(tmp_path / 'run.log'), sinks=[EventSink(str(tmp_path / 'tensorboard' / 'run'))])
    log.log('steps=1, chairs=3.5')

    def broken():
        raise ValueError('no pair')
    log.validation_images(1, broken)
    log.log('steps=2, chairs=3.0')   # written to the log; events stopped after the warning
    log.close()
    assert 'warning: TensorBoard events' in capsys.readouterr().err
    reader = event_reader(tmp_path / 'tensorboard' / 'run')
    assert steps_and_values(reader, 'val/chairs') == [(1, 3.5)]


def test_the_tenth_event_file_of_a_process_is_still_read_after_the_ninth(tmp_path, monkeypatch):
    """TensorBoard reads event files in name order; '.10' sorted before '.9' once hid a
    resumed run's newer steps behind its older ones (seen when one process wrote many)."""
    import itertools
    from tracking import events
    monkeypatch.setattr(events, '_file_numbers', itertools.count(9))
    test_a_resume_hides_the_steps_it_redoes_as_the_log_reader_drops_them(tmp_path)


def test_a_diverged_runs_nan_stays_out_of_the_events_and_they_go_on(tmp_path, capfd):
    """tensorboardX printed 'NaN or Inf found in input tensor.' for each NaN, and flow_vis
    failed on a NaN flow, which stopped the events for the rest of the run."""
    import numpy as np
    from tracking.events import EventSink
    log_path = tmp_path / 'run.log'
    log = RunLog(str(log_path), sinks=[EventSink(events_folder(str(log_path)))])
    log.log('steps=1, epe=nan, total_time=0.50')
    log.log('steps=1, chairs=nan')
    log.learning_rate(1, float('nan'))
    log.validation_images(1, lambda: (np.full((8, 8, 2), np.nan, np.float32),
                                      np.zeros((8, 8), np.uint8)))
    log.log('steps=2, epe=3.0, total_time=0.50')
    log.close()
    assert capfd.readouterr() == ('', '')
    reader = event_reader(events_folder(str(log_path)))
    assert steps_and_values(reader, 'train/epe') == [(2, 3.0)]
    assert (log_path.read_text().count('nan')) == 2   # the text log keeps them


def test_a_converted_log_leaves_out_nan_as_live_training_does(tmp_path, capfd):
    """plot_logs --tensorboard wrote a diverged run's NaN, and tensorboardX printed a warning
    line for each, where the live events had left them out."""
    from tracking.events import write_log_events
    from tracking.logformat import read_log
    log_path = tmp_path / 'run.log'
    log_path.write_text('[2026/12/07 10:00:00] steps=1, epe=nan, total_time=0.50\n'
                        '[2026/12/07 10:00:01] steps=1, chairs=4.0, sintel=inf\n'
                        '[2026/12/07 10:00:02] steps=2, epe=3.0, total_time=0.50\n')
    assert write_log_events(read_log(str(log_path)), str(tmp_path / 'tb')) == 4
    assert capfd.readouterr() == ('', '')
    reader = event_reader(str(tmp_path / 'tb'))
    assert steps_and_values(reader, 'train/epe') == [(2, 3.0)]
    assert steps_and_values(reader, 'val/chairs') == [(1, 4.0)]
    assert 'val/sintel' not in reader.Tags()['scalars']
