"""engine/train.py: training runs through the library (run_training): log lines, checkpoints,
an exact continuation, and the TensorBoard events the run writes."""
import re
from pathlib import Path

import cv2
import mxnet as mx
import pytest

import plot_logs
from network.pipeline import Pipeline
from tracking.logformat import read_log
from tracking.runlog import events_folder
from tests.helpers import (SAMPLE, event_reader, log_lines, steps_and_values,
                           write_small_chairs_config)

pytestmark = pytest.mark.slow


def test_two_steps_then_a_resume_through_the_library(tmp_path, monkeypatch):
    """run_training, called directly: log lines, checkpoints, then an exact continuation; the
    graphs' memory is released before and after each validation."""
    from common.config import load_config
    from engine.train import RunOptions, run_training
    released = []   # which graph held a plan (and its memory) when released
    release = Pipeline.release_graph_memory
    monkeypatch.setattr(Pipeline, 'release_graph_memory', lambda pipe: (
        released.append((pipe.network._cached_op is not None,
                         pipe.inference_network._cached_op is not None)), release(pipe)))
    write_small_chairs_config(tmp_path)
    roots = tmp_path / 'roots.yaml'
    roots.write_text('chairs: %s\n' % (SAMPLE / 'FlyingChairs_release'))
    options = dict(roots_file=roots, weights_dir=str(tmp_path / 'w'), logs_dir=str(tmp_path / 'l'),
                   debug=True, seed=1)
    config, small = load_config('MaskFlownet_S.yaml'), load_config(tmp_path / 'small.yaml')
    first = run_training(config, small, [mx.cpu()],
                         RunOptions(max_steps=2, log_args={'seed': 1}, **options))
    run_id = first.run_id
    assert re.fullmatch(r'[0-9a-f]{3}[A-Z][a-z]{2}\d\d-\d{4}', run_id) and first.steps == 2
    log = tmp_path / 'l' / 'debug' / ('%s.log' % run_id)
    lines = log_lines(log)
    assert lines[0].startswith('start=0, train=1, val=1, host=') and lines[0].endswith('batch=1')
    assert lines[1] == 'seed=1'
    assert re.search(r'^steps=1, epe=[0-9.]+, total_time=[0-9.]+$', '\n'.join(lines), re.M)
    assert re.search(r'^steps=2, chairs=[0-9.]+$', '\n'.join(lines), re.M)
    assert first.newest == str(tmp_path / 'w' / ('%s_2.params' % run_id))
    # Validations at steps 1 and 2: the training graph lets go of its memory before, the
    # inference graph after.
    assert released == [(True, False), (False, True)] * 2

    second = run_training(config, small, [mx.cpu()],
                          RunOptions(checkpoint=run_id, max_steps=2, **options))
    assert (second.run_id, second.steps, second.started_from) == (run_id, 4, first.newest)
    assert 'start=2, train=1, val=1' in '\n'.join(log_lines(log))
    assert sorted(p.name for p in (tmp_path / 'w').glob('*.params')) == \
        ['%s_%d.params' % (run_id, s) for s in (2, 4)]


def test_a_debug_training_run_writes_events_that_tensorboard_reads(tmp_path, capsys):
    from common.config import load_config
    from engine.train import RunOptions, run_training
    write_small_chairs_config(tmp_path)
    roots = tmp_path / 'roots.yaml'
    roots.write_text('chairs: %s\n' % (SAMPLE / 'FlyingChairs_release'))
    result = run_training(load_config('MaskFlownet_S.yaml'), load_config(tmp_path / 'small.yaml'),
                          [mx.cpu()], RunOptions(max_steps=2, roots_file=roots, debug=True, seed=1,
                                                 weights_dir=str(tmp_path / 'w'),
                                                 logs_dir=str(tmp_path / 'l')))
    log = tmp_path / 'l' / 'debug' / ('%s.log' % result.run_id)
    folder = tmp_path / 'l' / 'debug' / 'tensorboard' / result.run_id
    assert Path(events_folder(str(log))) == folder
    reader = event_reader(folder)
    assert set(reader.Tags()['scalars']) == {'train/epe', 'train/seconds_per_step', 'train/lr',
                                             'val/chairs'}
    # The values the text log holds, read with a pattern of their own.
    text = log.read_text()
    epe = [(int(s), float(v)) for s, v in re.findall(r'steps=(\d+), epe=([^,]+),', text)]
    chairs = [(int(s), float(v)) for s, v in re.findall(r'steps=(\d+), chairs=(\S+)', text)]
    assert [s for s, _ in epe] == [1, 2] and [s for s, _ in chairs] == [1, 2]
    assert steps_and_values(reader, 'train/epe') == [(s, pytest.approx(v, rel=1e-6))
                                                     for s, v in epe]
    assert steps_and_values(reader, 'val/chairs') == [(s, pytest.approx(v, rel=1e-6))
                                                      for s, v in chairs]
    # MaskFlownet_S.yaml: 1e-4 up to step 400000.
    assert steps_and_values(reader, 'train/lr') == [(1, pytest.approx(1e-4)),
                                                    (2, pytest.approx(1e-4))]
    # One validation pair's flow colours and occlusion mask at each validation: the first
    # (the only) Chairs validation pair, at its own size.
    size = cv2.imread(str(SAMPLE / 'FlyingChairs_release' / 'data' / '00002_img1.ppm')).shape[:2]
    assert set(reader.Tags()['images']) == {'val/flow', 'val/occ_mask'}
    for tag in ('val/flow', 'val/occ_mask'):
        images = reader.Images(tag)
        assert [i.step for i in images] == [1, 2]
        assert (images[0].height, images[0].width) == size
        assert images[0].encoded_image_string.startswith(b'\x89PNG')
    # A converted log gets the same scalar tags and values, and plots.
    parsed = read_log(str(log))
    assert set(parsed.series) == set(reader.Tags()['scalars']) - {'train/lr'}
    assert [(s, v) for s, v, _ in parsed.series['train/epe']] == epe
    out = tmp_path / 'curves.png'
    assert plot_logs.main([str(out), str(log)]) == 0 and out.stat().st_size > 1000
    assert 'warning' not in capsys.readouterr().err
