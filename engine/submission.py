"""``main.py --predict``: benchmark submissions (Sintel ``.flo``, KITTI 16-bit PNG) for the
test splits of ``evaluate.BENCHMARKS``.

Each output folder holds ``predict_settings.json``: the identity of the weights, the network
config and the network input size that wrote its files. A restarted run skips the outputs
that are complete and refuses, before writing anything, a folder written with other settings
(or one with files but no record), so a folder never mixes flows of two settings. Every file
is written atomically; an output that is truncated or corrupt anyway (copied in, cut by
something else) is written again.
"""
import hashlib
import json
import os
from typing import NamedTuple

from common import files
from common.errors import UserError
from network.checkpoint import parameters_by_name
from network.conventions import occ_mask_image
from reader import flowio, roots

from .evaluate import BENCHMARKS, stream_runs

SETTINGS_FILE = 'predict_settings.json'


def weights_sha256(network):
    """sha256 over the names, shapes and float values of the loaded weights.

    It identifies what was loaded, whatever the checkpoint file is called.
    """
    digest = hashlib.sha256()
    for name, param in sorted(parameters_by_name(network).items()):
        array = param.data(param.list_ctx()[0]).asnumpy()
        digest.update(('%s %s %s\n' % (name, array.dtype.str, array.shape)).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def pipe_weights_sha256(pipe):
    """weights_sha256 of a Pipeline's network, or what the onnxruntime backend knows of it."""
    if hasattr(pipe, 'weights_sha256'):
        return pipe.weights_sha256()
    return weights_sha256(pipe.network)


def _outputs(flow_path, occ_mask):
    paths = [flow_path]
    if occ_mask:
        paths.append(os.path.splitext(flow_path)[0] + '_occ.png')
    return paths


_SETTING_NAMES = {'weights_sha256': 'checkpoint weights sha256',
                  'network_size': 'network input size',
                  'network_class': 'network class', 'network_config': 'network config'}


def _shown(key, value):
    if value is None:
        return 'unknown'
    if key == 'network_size':
        return 'x'.join(map(str, value))
    if key == 'weights_sha256':
        return value[:12] + '...'
    return json.dumps(value)


def check_settings(folder, settings):
    """Raise UserError unless ``folder`` is new, empty, or was written with ``settings``."""
    record = os.path.join(folder, SETTINGS_FILE)
    retry = 'move or delete %s to predict again with these settings' % folder
    if not os.path.exists(record):
        if any(files for _, _, files in os.walk(folder)):
            raise UserError('%s: holds files but no %s, so the checkpoint and settings that '
                            'wrote them are unknown; %s' % (folder, SETTINGS_FILE, retry))
        return
    try:
        with open(record) as f:
            written = json.load(f)
    except (OSError, ValueError) as e:
        raise UserError('%s: unreadable settings record (%s); %s' % (record, e, retry)) from None
    if not isinstance(written, dict):
        raise UserError('%s: not a settings record; %s' % (record, retry))
    differing = [key for key in settings if written.get(key) != settings[key]]
    if differing:
        changes = '; '.join('%s %s, now %s' % (_SETTING_NAMES.get(k, k), _shown(k, written.get(k)),
                                                _shown(k, settings[k])) for k in differing)
        raise UserError('%s: written by --predict with other settings (%s); %s'
                        % (folder, changes, retry))


def _write_settings(folder, settings):
    record = os.path.join(folder, SETTINGS_FILE)
    if not os.path.exists(record):
        with files.atomic_output(record) as tmp, open(tmp, 'w') as f:
            json.dump(settings, f, indent=1, sort_keys=True)
            f.write('\n')


def _predict_to_files(pipe, jobs, write_flow, batch_size, resize, occ_mask, description):
    """Run ``pipe`` on ``jobs`` [(sample, flow_path)] not yet done; returns (written, skipped)."""
    todo = [(s, p) for s, p in jobs if not all(map(flowio.output_is_complete, _outputs(p, occ_mask)))]
    paths = {sample.name: path for sample, path in todo}

    def write(samples, run):
        results = pipe.predict([e.img1 for e in run], [e.img2 for e in run],
                               batch_size=batch_size, resize=resize)
        for sample, (flow, mask, _) in zip(samples, results):
            # The flow and its mask together or neither: an interrupt between the two would
            # leave a flow without its mask, which a restart would then skip.
            with files.atomic_outputs(*_outputs(paths[sample.name], occ_mask)) as tmps:
                write_flow(tmps[0], flow)
                if occ_mask:
                    flowio.write_image(tmps[1], occ_mask_image(mask))

    stream_runs(pipe, [s for s, _ in todo], batch_size, write, description)
    return len(todo), len(jobs) - len(todo)


class _Run(NamedTuple):
    what: str           # report name: 'sintel', 'kitti.2015'
    folder: str         # the output folder, holding the settings record
    jobs: list          # [(sample, flow path)]
    write_flow: object  # the benchmark's flow writer
    network_size: tuple


def predict_submissions(pipe, out_prefix, batch_size=1, resize=None, occ_mask=False):
    """Write ``{out_prefix}_sintel/{clean,final}/SEQ/frame_XXXX.flo`` and
    ``{out_prefix}_kitti/{2012,2015}/XXXXXX_10.png``; returns [(what, written, skipped or note)].

    Raises UserError, before writing anything, if an output folder was written with other
    settings (see ``check_settings``).
    """
    tasks = []   # a _Run, or (what, note) for a benchmark that is not configured
    for benchmark in BENCHMARKS:
        if benchmark.submission is None:
            continue
        if not roots.configured(benchmark.root_key):
            tasks.append((benchmark.name, 'not configured, skipped'))
            continue
        submission = benchmark.submission
        folder = out_prefix + submission.suffix
        samples = benchmark.lister(roots.dataset_root(benchmark.root_key), benchmark.test_split)
        jobs = [(s, os.path.join(folder, submission.path(s))) for s in samples]
        tasks.append(_Run(benchmark.name, folder, jobs, submission.write_flow,
                          resize or benchmark.predict_size))

    runs = [task for task in tasks if isinstance(task, _Run)]
    settings = {}
    if runs:
        # What the flows depend on. --occ_mask only adds files; batch size and devices
        # change nothing but float noise.
        identity = {'network_class': pipe.network_class,
                    'network_config': pipe.config['network'].value,
                    'weights_sha256': pipe_weights_sha256(pipe)}
        settings = {run.folder: dict(identity, network_size=list(run.network_size))
                    for run in runs}
        settings = json.loads(json.dumps(settings))   # compare as the record reads back
    for folder, folder_settings in settings.items():
        check_settings(folder, folder_settings)
        files.prove_writable(folder)

    report = []
    for task in tasks:
        if not isinstance(task, _Run):
            report.append((task[0], 0, task[1]))
            continue
        _write_settings(task.folder, settings[task.folder])
        written, skipped = _predict_to_files(pipe, task.jobs, task.write_flow, batch_size,
                                             task.network_size, occ_mask, task.what)
        report.append((task.what, written, skipped))
    return report
