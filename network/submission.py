"""``--predict``: Sintel and KITTI test-set flows in each benchmark's submission layout.

Every file is written atomically, so an interrupted run leaves only complete files, and a
restarted run skips the pairs whose outputs already exist.
"""
import os

from tqdm import tqdm

from reader import flowio, kitti, roots, sintel
from reader.sample import load_sample

from .evaluate import KITTI_NETWORK_SIZE, same_shape_runs
from .predict import occ_mask_image

SINTEL_NETWORK_SIZE = (448, 1024)   # the original's Sintel inference size (H, W)


def _outputs(flow_path, occ_mask):
    paths = [flow_path]
    if occ_mask:
        paths.append(os.path.splitext(flow_path)[0] + '_occ.png')
    return paths


def _predict_to_files(pipe, jobs, write_flow, batch_size, resize, occ_mask, description):
    """Run ``pipe`` on ``jobs`` [(sample, flow_path)] not yet done; returns (written, skipped)."""
    todo = [(s, p) for s, p in jobs if not all(os.path.exists(q) for q in _outputs(p, occ_mask))]
    chunk = max(1, batch_size * len(pipe.ctx))
    with tqdm(total=len(todo), desc=description, leave=False) as bar:
        for start in range(0, len(todo), chunk):
            part = todo[start:start + chunk]
            paths = iter([p for _, p in part])
            # Batches need one frame size; KITTI test frames differ, Sintel's do not.
            for run in same_shape_runs([load_sample(s) for s, _ in part]):
                results = pipe.predict([e.img1 for e in run], [e.img2 for e in run],
                                       batch_size=batch_size, resize=resize)
                for flow, mask, _ in results:
                    path = next(paths)
                    write_flow(path, flow)
                    if occ_mask:
                        flowio.write_image(_outputs(path, True)[1], occ_mask_image(mask))
            bar.update(len(part))
    return len(todo), len(jobs) - len(todo)


def predict_submissions(pipe, out_prefix, batch_size=1, resize=None, occ_mask=False):
    """Write ``{out_prefix}_sintel/{clean,final}/SEQ/frame_XXXX.flo`` and
    ``{out_prefix}_kitti/{2012,2015}/XXXXXX_10.png``; returns [(what, written, skipped or note)]."""
    report = []
    if roots.configured('sintel'):
        samples = sintel.list_samples(roots.dataset_root('sintel'), 'test')
        jobs = [(s, os.path.join(out_prefix + '_sintel', s.group, s.img1.parent.name,
                                 s.img1.stem + '.flo')) for s in samples]
        written, skipped = _predict_to_files(pipe, jobs, flowio.write_flo, batch_size,
                                             resize or SINTEL_NETWORK_SIZE, occ_mask, 'sintel')
        report.append(('sintel', written, skipped))
    else:
        report.append(('sintel', 0, 'not configured, skipped'))
    for edition in ('2012', '2015'):
        key = 'kitti' + edition
        if not roots.configured(key):
            report.append(('kitti.' + edition, 0, 'not configured, skipped'))
            continue
        samples = kitti.list_samples(roots.dataset_root(key), edition, 'testing')
        jobs = [(s, os.path.join(out_prefix + '_kitti', edition, s.img1.name)) for s in samples]
        written, skipped = _predict_to_files(pipe, jobs, flowio.write_kitti_flow_png, batch_size,
                                             resize or KITTI_NETWORK_SIZE, occ_mask, 'kitti.' + edition)
        report.append(('kitti.' + edition, written, skipped))
    return report
