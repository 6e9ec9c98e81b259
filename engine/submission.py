"""``main.py --predict``: benchmark submissions (Sintel ``.flo``, KITTI 16-bit PNG) for the
test splits of ``evaluate.BENCHMARKS``.

Each output folder holds ``predict_settings.json`` (``engine.settings``): the identity of the
weights, the network config and the network input size that wrote its files. A restarted run skips the outputs
that are complete and refuses, before writing anything, a folder written with other settings
(or one with files but no record), so a folder never mixes flows of two settings. Every file
is written atomically; an output that is truncated or corrupt anyway (copied in, cut by
something else) is written again.
"""
import os
from typing import NamedTuple

from common import files
from network.conventions import occ_mask_image
from reader import flowio, roots

from .evaluate import BENCHMARKS, stream_runs
from .settings import as_recorded, check_settings, network_identity, record_on_first_output

def _outputs(flow_path, occ_mask):
    paths = [flow_path]
    if occ_mask:
        paths.append(os.path.splitext(flow_path)[0] + '_occ.png')
    return paths


def _predict_to_files(pipe, jobs, write_flow, batch_size, resize, occ_mask, description,
                      before_output=lambda: None):
    """Run ``pipe`` on ``jobs`` [(sample, flow_path)] not yet done; returns (written, skipped).
    ``before_output()`` is called before each flow is written."""
    todo = [(s, p) for s, p in jobs if not all(map(flowio.output_is_complete, _outputs(p, occ_mask)))]
    paths = {sample.name: path for sample, path in todo}

    def write(samples, run):
        results = pipe.predict([e.img1 for e in run], [e.img2 for e in run],
                               batch_size=batch_size, resize=resize)
        for sample, (flow, mask, _) in zip(samples, results):
            # The flow and its mask together or neither: an interrupt between the two would
            # leave a flow without its mask, which a restart would then skip.
            before_output()
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


def submission_plan(out_prefix, resize=None):
    """The submissions to write: a _Run per configured benchmark (its test split listed, its
    root checked), or (what, note) for one that is not configured. Needs no network: found
    before one is built."""
    tasks = []
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
    return tasks


def predict_submissions(pipe, out_prefix, batch_size=1, resize=None, occ_mask=False, tasks=None):
    """Write ``{out_prefix}_sintel/{clean,final}/SEQ/frame_XXXX.flo`` and
    ``{out_prefix}_kitti/{2012,2015}/XXXXXX_10.png``; returns [(what, written, skipped or note)].
    ``tasks``: submission_plan's, when made before the network was built.

    Raises UserError, before writing anything, if an output folder was written with other
    settings (see ``check_settings``).
    """
    if tasks is None:
        tasks = submission_plan(out_prefix, resize)
    runs = [task for task in tasks if isinstance(task, _Run)]
    settings = {}
    if runs:
        # What the flows depend on. --occ_mask only adds files; batch size and devices
        # change nothing but float noise.
        identity = network_identity(pipe)
        settings = {run.folder: as_recorded(dict(identity, network_size=list(run.network_size)))
                    for run in runs}
    for folder, folder_settings in settings.items():
        check_settings(folder, folder_settings, '--predict')
        files.prove_writable(folder)

    report = []
    for task in tasks:
        if not isinstance(task, _Run):
            report.append((task[0], 0, task[1]))
            continue
        written, skipped = _predict_to_files(
            pipe, task.jobs, task.write_flow, batch_size, task.network_size, occ_mask, task.what,
            record_on_first_output(task.folder, settings[task.folder]))
        report.append((task.what, written, skipped))
    return report
