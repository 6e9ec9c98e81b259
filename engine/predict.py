"""Prediction for new data: load a network for a config and checkpoint, run it on an image pair,
on the consecutive frames of a video or of a folder, or on the pairs of a list.

``predict_new_data.py`` is a thin command line over ``predict_files`` and ``predict_folder``;
both run the network through ``engine.api.Model``, the Python API.
"""
import itertools
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import flow_vis
import numpy as np
from tqdm import tqdm

from common import files
from common.devices import parse_devices
from common.errors import UserError
from common.options import check_side, parse_resize
from network.conventions import network_size
from reader import custom, flowio, video

from . import api
from .failures import memory_guard
from .onnx_backend import check_backend
from .settings import as_recorded, check_settings, network_identity, record_on_first_output


def predict_files(out, config, checkpoint, image_1=None, image_2=None, video_path=None,
                  devices='', resize='', occ_mask=None, batch=None, side_by_side=False,
                  download=False, accept_short_video=False, backend='mxnet'):
    """``predict_new_data.py``: check every input and output, then write the flow of an image
    pair (or of a video's consecutive frames) to ``out``; returns the line to print.

    ``download``: a published checkpoint of the original that ``checkpoint`` names and
    weights/ lacks is downloaded first (``--download``). ``backend``: 'mxnet' or 'onnxruntime'
    (``--backend``; engine/onnx_backend.py)."""
    if video_path is not None:
        outputs = [out]
        check_video(video_path, out)
    else:
        outputs = pair_outputs(out, occ_mask)
        images = check_image_pair(image_1, image_2, out, occ_mask)
    resize = parse_resize(resize)
    device = check_backend(backend, devices)
    ctx = parse_devices(devices) if backend == 'mxnet' else None
    files.remove_stale_temporaries_of(outputs)   # what killed runs left behind
    pipe, checkpoint = load_pipeline(config, checkpoint, ctx, download, backend, device)
    model = api.Model(pipe)
    if video_path is not None:
        frames = predict_video(model, video_path, out, batch=batch, resize=resize,
                               side_by_side=side_by_side, accept_short=accept_short_video)
        fps, width, height = video.video_format(out)
        return '%s: %d flow frames, %.2f fps, %dx%d, from %s' % (out, frames, fps, width, height,
                                                                 checkpoint)
    flow, _ = write_pair_flow(model, *images, out, occ_mask, resize)
    return '%s: flow %dx%d from %s, max |flow| %.2f px' % (out, flow.shape[1], flow.shape[0],
                                                           checkpoint, abs(flow).max())


def load_pipeline(config_name, checkpoint_spec, ctx=None, download=False, backend='mxnet',
                  device=None):
    """The inference backend for ``config_name`` with the checkpoint ``-c`` names loaded, by
    ``engine.api.load_model``; returns (backend, checkpoint path). ``backend`` 'onnxruntime'
    gives an onnx_backend.OnnxPipeline on ``device`` (from check_backend) instead of an MXNet
    Pipeline on ``ctx``; it loads no MXNet when its models are cached.

    ``download``: see predict_files."""
    model = api.load_model(config_name, checkpoint_spec, device=ctx, download=download,
                           backend=backend, backend_device=device)
    return model.backend, model.loaded.checkpoint


def read_pair(path1, path2):
    """Two images as the original's predict_new_data.py fed them: OpenCV BGR uint8."""
    # Fed in OpenCV's BGR order as the original's predict_new_data.py did, so a checkpoint gives
    # the same flow as there (the Chairs and Sintel training readers give RGB).
    img1, img2 = flowio.read_image(path1), flowio.read_image(path2)
    check_side(path1, img1.shape)
    if img1.shape != img2.shape:
        raise UserError('%s is %dx%d but %s is %dx%d: the two images must have the same size'
                        % (path1, img1.shape[1], img1.shape[0], path2, img2.shape[1], img2.shape[0]))
    return img1, img2


def pair_outputs(out_path, occ_mask_path=None):
    """The files an image pair writes: the flow, and the occlusion mask if asked for."""
    return [out_path] + ([occ_mask_path] if occ_mask_path else [])


def check_image_pair(image_1, image_2, out_path, occ_mask_path=None):
    """Raise UserError now, before the network loads, for a bad input or output of an image
    pair; return the two images."""
    flowio.check_flow_output_path(out_path)
    if occ_mask_path:
        flowio.check_image_output_path(occ_mask_path)
    files.check_output_paths(pair_outputs(out_path, occ_mask_path), inputs=[image_1, image_2])
    return read_pair(image_1, image_2)


def write_pair_flow(model, img1, img2, out_path, occ_mask_path=None, resize=None):
    """Write the flow from ``img1`` to ``img2`` (read and checked by ``check_image_pair``) to
    ``out_path`` (kind by extension); return (flow, occlusion mask) as ``api.Model.predict``.

    With ``occ_mask_path`` the occlusion mask is written too: both files or neither, and a
    failure leaves the files that were at these paths before as they were.
    """
    network = 'x'.join(map(str, network_size(img1.shape[:2], resize)[::-1]))
    with memory_guard('predicting the flow at network size %s' % network, '--resize'):
        flow, occ = model.predict(img1, img2, resize=resize)
    with files.atomic_outputs(*pair_outputs(out_path, occ_mask_path)) as tmps:
        flowio.write_flow(tmps[0], flow)
        if occ_mask_path:
            flowio.write_image(tmps[1], api.occ_image(occ))
    return flow, occ


# --- video --------------------------------------------------------------------------------

def check_video_input(path):
    """Raise UserError now, before the network loads, unless ``path`` decodes two frames."""
    with video.open_video(path) as capture:
        check_side(path, video.first_two_frames(video.read_frames(capture, path), path)[0].shape)


def check_video(video_path, out_path):
    """Raise UserError now, before the network loads, for a bad input or output of predict_video."""
    video.check_video_output_path(out_path)
    files.check_output_paths([out_path], inputs=[video_path])
    check_video_input(video_path)


def pair_batches(frames, batch):
    """Group consecutive frames into (firsts, seconds) lists of at most ``batch`` pairs."""
    firsts, seconds, previous = [], [], None
    for frame in frames:
        if previous is not None:
            firsts.append(previous)
            seconds.append(frame)
            if len(firsts) == batch:
                yield firsts, seconds
                firsts, seconds = [], []
        previous = frame
    if firsts:
        yield firsts, seconds


def render_video_frame(frame_bgr, flow, occ, side_by_side=False):
    """The flow colours (RGB), or [frame | flow colours | occlusion mask] with ``side_by_side``
    (``occ`` as ``api.Model.predict`` gives it)."""
    colours = flow_vis.flow_to_color(flow, convert_to_bgr=False)
    if not side_by_side:
        return colours
    mask = np.repeat(api.occ_image(occ)[..., None], 3, axis=2)
    return np.concatenate([frame_bgr[..., ::-1], colours, mask], axis=1)


def predict_video(model, video_path, out_path, batch=None, resize=None, side_by_side=False,
                  accept_short=False):
    """Write the flow between consecutive frames of ``video_path`` as a video; return its frames.

    ``model``: an ``api.Model`` (or a backend, such as a ``Pipeline``, that it wraps).
    Frame k of the output shows the flow from input frame k to k+1, in flow_vis colours, at the
    input's frame rate. Frames are streamed, ``batch`` pairs a network call (by default
    the model's ``default_batch`` for its device type): at most two batches of pairs
    are in memory at a time. The output appears only when complete (written beside it, then
    renamed). A video that ends before the frame count its container announces is an error,
    unless ``accept_short`` (then a line on standard error says so).
    """
    ext = video.check_video_output_path(out_path)
    files.check_output_paths([out_path], inputs=[video_path])
    model = model if isinstance(model, api.Model) else api.Model(model)
    if batch is None:
        batch = model.default_batch
    if batch < 1:
        raise UserError('--batch %d: expected a positive number of frame pairs' % batch)
    video_path = os.fspath(video_path)
    with video.open_video(video_path) as capture:
        fps = video.video_fps(capture, video_path)
        frame_count = video.frames_announced(capture)
        frames = video.read_frames(capture, video_path, stop_at_damage=accept_short)
        # Frames are fed in OpenCV's BGR order as the original's predict_new_data.py did, so a
        # checkpoint gives the same flow as there.
        first_two = video.first_two_frames(frames, video_path)
        check_side(video_path, first_two[0].shape)
        height, width = first_two[0].shape[:2]
        size = (width * (3 if side_by_side else 1), height)
        written = 0
        # The same temp-then-rename writer as every flow file: no half-written OUT, ever.
        # disable=None: a progress bar only on a terminal, where leave=False wipes its line
        # before an error line; in a log file the error would run on from the bar's line.
        with files.atomic_output(out_path, ext) as tmp, \
                video.StreamingVideoWriter(tmp, size, fps, name=out_path) as writer, \
                tqdm(total=frame_count - 1 if frame_count > 1 else None, unit='frame',
                     desc='flow', leave=False, disable=None) as bar:
            def write(firsts, results):
                for frame, (flow, occ) in zip(firsts, results):
                    writer.write(render_video_frame(frame, flow, occ, side_by_side))
                    bar.update()

            # A batch's colours and encoding run in a thread while the network
            # works on the next batch, filling the cores' idle moments between its operators;
            # at most two batches are in memory. An error on either side ends the loop, and
            # leaving the executor waits for the write under way before the output is dropped.
            with ThreadPoolExecutor(max_workers=1) as writing:
                pending = writing.submit(lambda: None)
                network = 'x'.join(map(str, network_size((height, width), resize)[::-1]))
                for firsts, seconds in pair_batches(itertools.chain(first_two, frames), batch):
                    if pending.done():
                        pending.result()   # a failed write ends the run before another batch
                    with memory_guard('predicting %d frame pairs at network size %s'
                                      % (len(firsts), network), '--batch or --resize'):
                        results = list(model.iter_predict(firsts, seconds, batch_size=batch,
                                                          resize=resize))
                    pending.result()
                    pending = writing.submit(write, firsts, results)
                    written += len(firsts)
                pending.result()
                check_frame_count(video_path, written + 1, frame_count, accept_short)
    return written


def check_frame_count(path, decoded, announced, accept_short=False):
    """A video that decodes fewer frames than its container announces is damaged or cut: an
    error, or with ``accept_short`` a line on standard error."""
    if announced and decoded < announced:
        message = ('%s: the video announces %d frames but only %d decode (damaged or cut short)'
                   % (path, announced, decoded))
        if not accept_short:
            raise UserError(message + '; --accept_short_video writes the flow of the frames '
                                      'that decode')
        print('warning: %s; writing the flow of those %d' % (message, decoded), file=sys.stderr)


# --- folders of frames and lists of pairs -----------------------------------------------------

# --format: (extension, writer(path, flow))
FORMATS = {
    'flo': ('.flo', flowio.write_flo),
    'npy': ('.npy', flowio.write_npy),
    'png': ('.png', flowio.write_flow),               # flow_vis colours
    'kitti': ('.png', flowio.write_kitti_flow_png),   # KITTI's 16-bit flow PNG
}
OCC_SUFFIX = '_occ.png'


def folder_jobs(pairs, out_dir, fmt, occ_mask):
    """[(pair, flow path, mask path or None)] for ``pairs`` written into ``out_dir``; UserError
    for two pairs (or a flow and a mask) that would write one file."""
    ext = FORMATS[fmt][0]
    jobs, owners = [], {}
    for pair in pairs:
        name = pair.name[:-len(ext)] if pair.name.lower().endswith(ext) else pair.name
        flow_path = os.path.join(out_dir, name + ext)
        mask_path = os.path.join(out_dir, name + OCC_SUFFIX) if occ_mask else None
        for path in filter(None, (flow_path, mask_path)):
            key = _place(path)   # also through a linked subfolder
            if key in owners:
                raise UserError('%s: writes %s, which %s writes too; give the pairs different '
                                'names (a third field in a --pairs list)'
                                % (pair.where, path, owners[key]))
            owners[key] = pair.where
        jobs.append((pair, flow_path, mask_path))
    top = _place(out_dir)
    for key, where in owners.items():   # a.flo and a.flo/b.flo: a file and a folder at once
        folder = os.path.dirname(key)
        while folder.startswith(top) and folder != top:
            if folder in owners:
                raise UserError('%s: writes into %s, which %s writes as a file; give the pairs '
                                'other names' % (where, folder, owners[folder]))
            folder = os.path.dirname(folder)
    return jobs


def _place(path):
    """Where ``path`` leads, through links, in one spelling."""
    return os.path.normcase(os.path.realpath(os.path.abspath(path)))


def _check_folder_outputs(jobs):
    """Raise UserError now unless every output can be written: the folder (made if missing) is
    writable, no output is a folder or one of the input images."""
    files.check_output_paths(
        [path for _, flow, mask in jobs for path in (flow, mask) if path],
        inputs=dict.fromkeys(image for pair, _, _ in jobs for image in (pair.img1, pair.img2)))


def predict_folder(out_dir, config, checkpoint, frames=None, pairs=None, devices='', resize='',
                   fmt='flo', occ_mask=False, batch=None, download=False, backend='mxnet'):
    """``predict_new_data.py OUT_DIR CONFIG --frames DIR | --pairs LIST``: the flow of each pair
    of consecutive frames of the folder ``frames`` (by name, numbers by value), or of each pair
    of the list ``pairs``, as ``OUT_DIR/<NAME>.<ext>`` (NAME: the first image's stem, or the
    list's third field), ``fmt`` one of ``FORMATS``; with ``occ_mask`` also
    ``OUT_DIR/<NAME>_occ.png``. Returns the line to print.

    Every input and output is checked before the network loads; the settings record
    (``engine.settings``) refuses a folder written with another checkpoint, --resize or
    --format. A restart skips the pairs whose files are complete. Pairs go through the
    network ``batch`` at a time, each flow and its mask are written together or not at all.
    """
    if fmt not in FORMATS:
        raise UserError('--format %s: one of %s' % (fmt, ', '.join(FORMATS)))
    if batch is not None and batch < 1:
        raise UserError('--batch %d: expected a positive number of pairs' % batch)
    resize = parse_resize(resize)
    listed = custom.frame_pairs(frames) if frames is not None else custom.list_pairs(pairs)
    jobs = folder_jobs(listed, out_dir, fmt, occ_mask)
    _check_folder_outputs(jobs)
    device = check_backend(backend, devices)
    ctx = parse_devices(devices) if backend == 'mxnet' else None
    pipe, checkpoint = load_pipeline(config, checkpoint, ctx, download, backend, device)
    model = api.Model(pipe)
    settings = as_recorded(dict(network_identity(pipe), format=fmt,
                                network_size=None if resize is None else list(resize)))
    outputs = [path for _, flow, mask in jobs for path in (flow, mask) if path]
    check_settings(out_dir, settings, 'predict_new_data.py', outputs=outputs)
    files.prove_writable(out_dir)
    files.remove_stale_temporaries_of(outputs)   # what killed runs left behind
    todo = [job for job in jobs
            if not all(flowio.output_is_complete(path) for path in job[1:] if path)]
    written = write_folder_flows(model, todo, fmt, batch, resize,
                                 record_on_first_output(out_dir, settings))
    return '%s: %d flows written, %d already there, from %s' % (
        out_dir, written, len(jobs) - len(todo), checkpoint)


def write_folder_flows(model, jobs, fmt, batch=None, resize=None, before_output=lambda: None):
    """Predict and write ``jobs`` (from ``folder_jobs``), ``batch`` pairs a network call;
    returns how many were written. A frame shared by consecutive pairs is read once.
    ``before_output()`` is called before each flow is written."""
    write = FORMATS[fmt][1]
    batch = model.default_batch if batch is None else batch
    cache = {}   # path -> image, for the frames of the batch at hand (and the one after it)
    with tqdm(total=len(jobs), unit='pair', desc='flow', leave=False, disable=None) as bar:
        for start in range(0, len(jobs), batch):
            chunk = jobs[start:start + batch]
            wanted = [path for pair, _, _ in chunk for path in (pair.img1, pair.img2)]
            cache = {path: cache[path] if path in cache else flowio.read_image(path)
                     for path in dict.fromkeys(wanted)}
            img1s = [cache[pair.img1] for pair, _, _ in chunk]
            img2s = [cache[pair.img2] for pair, _, _ in chunk]
            height, width = img1s[0].shape[:2]
            network = 'x'.join(map(str, network_size((height, width), resize)[::-1]))
            with memory_guard('predicting %d pairs at network size %s' % (len(chunk), network),
                              '--batch or --resize'):
                results = list(model.iter_predict(img1s, img2s, batch_size=batch, resize=resize))
            for (_, flow_path, mask_path), (flow, occ) in zip(chunk, results):
                before_output()
                with files.atomic_outputs(*filter(None, (flow_path, mask_path))) as tmps:
                    write(tmps[0], flow)
                    if mask_path:
                        flowio.write_image(tmps[1], api.occ_image(occ))
                bar.update()
    return len(jobs)
