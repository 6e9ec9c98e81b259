"""One training/validation sample: the paths of its files and how to load them.

The dataset modules (``chairs``, ``things3d``, ``sintel``, ``kitti``, ``hd1k``, ``custom``) only
list ``Sample`` records; ``load_sample`` turns one into an ``Example`` of arrays:

* ``img1``, ``img2``: uint8 H x W x 3 in the dataset's ORIGINAL channel order (below);
* ``flow``: float32 H x W x 2, (x, y) displacements in pixels; None for test splits;
* ``mask``: uint8 H x W x 1, 255 = valid, or None when the dataset has no mask. After a
  sparse resize (KITTI, HD1K) border pixels of valid regions get values between 0 and 255;
  the pipeline uses the mask as a weight (``mask / 255``), as the original did.

Channel order and mask per dataset. The channel orders differ because the original loaded
each dataset with a different library; they are kept for compatibility with the original
checkpoints, whose published numbers were obtained with exactly these inputs.

==========  =======  ================================================================
dataset     order    mask
==========  =======  ================================================================
Chairs      RGB      None (raw PPM bytes in the original)
Things3D    BGR      None (cv2.imread; the subset's occlusion maps are not used)
Sintel      RGB      255 - ``invalid/<seq>/frame_XXXX.png`` (skimage.io.imread)
KITTI       BGR      valid bit of the 16-bit ``flow_occ`` PNG x 255 (cv2.imread)
HD1K        BGR      valid bit of the 16-bit ``flow_occ`` PNG x 255 (cv2.imread)
custom      BGR      VALID PNG (non-zero) and a KITTI flow's valid bit; all 255 without
==========  =======  ================================================================

Custom lists are fed in predict_new_data.py's order (OpenCV BGR), so that a model validated
on a list sees exactly what the image-pair command line gives it.

Occlusion ground truth (for the metrics only, never for training) comes from
``load_occlusion``: Sintel's ``occlusions/`` PNGs, KITTI's ``flow_noc`` (occluded = not valid
there), a custom list's OCC PNG; it goes through the same crop, trim and resize as the flow.

Load options kept in the ``Sample`` (the original applied them while reading), in this order:

1. ``crop_bottom_left=(h, w)`` (KITTI): keep the bottom ``h`` rows and the left ``w``
   columns of images, flow and mask; flow values are unchanged.
2. ``trim_margins=(rows, cols)`` (HD1K): drop ``rows`` rows at the top and at the bottom and
   ``cols`` columns at the left and at the right; flow values are unchanged.
3. ``normalize`` (HD1K): stretch both images with their joint min and max to 0..255.
4. ``resize_hw=(h, w)`` (KITTI, HD1K): see ``sparse_resize``.
"""
import collections
import contextlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Optional, Tuple

import cv2
import numpy as np
from tqdm import tqdm

from common.errors import UserError
from reader import flowio

RGB, BGR = 'rgb', 'bgr'
# mask kinds: where a sample's valid mask comes from
INVALID_PNG = 'invalid_png'  # `mask` is a Sintel-style PNG marking INVALID pixels (non-zero)
FLOW_VALID = 'flow_valid'    # the valid bit of the KITTI-format flow PNG at `flow`
# A custom list's: valid where `mask` (an optional 8- or 16-bit PNG) is non-zero AND the flow
# file's own valid bit (KITTI PNG) is set; every pixel valid without either. Always a mask.
LISTED = 'listed'
# occlusion kinds: where `occ` comes from
OCC_PNG = 'occ_png'          # `occ` is a PNG marking OCCLUDED pixels (non-zero): Sintel, custom
NOC_FLOW = 'noc_flow'        # `occ` is KITTI's flow_noc PNG: occluded where its valid bit is 0


@dataclass(frozen=True)
class Sample:
    """Paths of one image pair (and its ground truth) plus the options needed to load it."""
    name: str                      # unique and readable, e.g. 'sintel/clean/alley_1/frame_0002'
    img1: Path
    img2: Path
    flow: Optional[Path]           # .flo, or a KITTI-format 16-bit .png; None for test splits
    mask: Optional[Path] = None    # only for mask_kind == INVALID_PNG
    mask_kind: Optional[str] = None
    channel_order: str = RGB
    group: str = ''                # reporting group: the Sintel pass, the KITTI edition, ...
    crop_bottom_left: Optional[Tuple[int, int]] = None
    trim_margins: Optional[Tuple[int, int]] = None
    normalize: bool = False
    resize_hw: Optional[Tuple[int, int]] = None
    occ: Optional[Path] = None     # occlusion ground truth, for the metrics (see load_occlusion)
    occ_kind: Optional[str] = None
    listed_at: Optional[str] = None   # 'LIST:LINE' of a custom list: errors name it
    # What identifies the sample from run to run where ``name`` does not (a custom list's
    # name is LIST:LINE): the line's fields as written, paths relative to the list's folder.
    key: Optional[str] = None


class Example(NamedTuple):
    img1: np.ndarray
    img2: np.ndarray
    flow: Optional[np.ndarray]
    mask: Optional[np.ndarray]


def group_samples(samples):
    """``{group: [samples]}`` in first-seen group order, keeping the order within each group."""
    groups = {}
    for sample in samples:
        groups.setdefault(sample.group, []).append(sample)
    return groups


def select_shard(samples, shard):
    """Every ``count``-th sample starting at ``index`` for ``shard=(index, count)``; all if None."""
    if shard is None:
        return list(samples)
    index, count = shard
    if not (isinstance(index, int) and isinstance(count, int) and 0 <= index < count):
        raise UserError(f'shard must be (index, count) with 0 <= index < count, got {shard!r}')
    return list(samples)[index::count]


def sparse_resize(flow, valid, resize_hw):
    """The original's resize of sparse ground truth (KITTI, HD1K) to ``resize_hw = (h, w)``.

    ``valid`` is H x W float32 in {0, 1}; flow at invalid pixels is ignored (set to zero, as
    the original did for HD1K; KITTI files already store zero there). Flow and valid map are
    resized bilinearly (cv2.resize), the flow is divided by the resized valid fraction
    (so a pixel mixing valid and invalid neighbours gets the mean of the valid ones, and
    invalid pixels never leak zeros into it), and its x and y components are scaled by
    ``(new_w - 1) / (old_w - 1)`` and ``(new_h - 1) / (old_h - 1)`` (corner-aligned scaling,
    although cv2.resize samples pixel centres: kept for compatibility with the original
    checkpoints). Returns (flow, mask) with mask = uint8(valid fraction x 255), truncated.
    """
    height, width = flow.shape[:2]
    new_h, new_w = resize_hw
    scale = (np.array([new_w, new_h], np.float32) - 1) / (np.array([width, height], np.float32) - 1)
    flow = np.ascontiguousarray(flow * valid[..., np.newaxis], dtype=np.float32)
    flow = cv2.resize(flow, (new_w, new_h)) * scale[np.newaxis, np.newaxis, :]
    valid = cv2.resize(valid, (new_w, new_h))[..., np.newaxis]
    flow = flow / (valid + (valid == 0))
    return flow.astype(np.float32), (valid * 255).astype(np.uint8)


def _read_flow(path):
    """(flow, valid or None) from a .flo, .pfm or .npy file or a KITTI-format flow PNG.

    Ground truth with NaN or infinite values is refused with the file's name: one such label
    turns every weight of a training run into NaN, and no dataset we read stores unknown flow
    that way (KITTI marks it with its valid bit, Sintel with its invalid masks).
    """
    flow, valid = flowio.read_flow(path)
    if valid is None:
        finite = np.isfinite(flow)
        if not finite.all():
            raise UserError(f'{path}: ground-truth flow holds {flow.size - finite.sum()} NaN or '
                            f'infinite values; fix or remove this sample')
    return flow, valid


def _crop(sample, arrays):
    """Apply the sample's crop options to the H x W (x C) arrays (None entries pass through)."""
    height, width = arrays[0].shape[:2]
    if sample.crop_bottom_left is not None:
        crop_h, crop_w = sample.crop_bottom_left
        if height < crop_h or width < crop_w:
            raise UserError(f'{sample.img1}: image {width}x{height} is smaller than the '
                            f'crop {crop_w}x{crop_h}')
        arrays = [None if a is None else a[height - crop_h:, :crop_w] for a in arrays]
        height, width = crop_h, crop_w
    if sample.trim_margins is not None:
        rows, cols = sample.trim_margins
        if height <= 2 * rows or width <= 2 * cols:
            raise UserError(f'{sample.img1}: image {width}x{height} is too small to trim '
                            f'{rows} rows and {cols} columns from each side')
        arrays = [None if a is None else a[rows:height - rows, cols:width - cols] for a in arrays]
    return arrays


def _normalize_pair(img1, img2):
    # HD1K frames are dark and low-contrast; the original stretched each pair jointly.
    low = min(img1.min(), img2.min())
    high = max(img1.max(), img2.max())
    if high == low:
        return img1, img2
    return tuple(((img - low) * (255.0 / (high - low))).astype(np.uint8) for img in (img1, img2))


def load_sample(sample):
    """Read ``sample`` into an ``Example`` (see the module docstring for layout and options)."""
    with _listed_at(sample):
        return _load_sample(sample)


@contextlib.contextmanager
def _listed_at(sample):
    """A problem with a custom list's sample names the list's line first."""
    try:
        yield
    except UserError as error:
        if sample.listed_at is None:
            raise
        raise UserError(f'{sample.listed_at}: {error}') from None


def _load_sample(sample):
    read = flowio.read_image_rgb if sample.channel_order == RGB else flowio.read_image
    img1, img2 = read(sample.img1), read(sample.img2)
    if img1.shape != img2.shape:
        raise UserError(f'{sample.img2}: size {img2.shape[1]}x{img2.shape[0]} differs from '
                        f'{sample.img1} ({img1.shape[1]}x{img1.shape[0]})')
    flow = valid = None
    if sample.flow is not None:
        flow, valid = _read_flow(sample.flow)
        if flow.shape[:2] != img1.shape[:2]:
            raise UserError(f'{sample.flow}: flow size {flow.shape[1]}x{flow.shape[0]} differs '
                            f'from image {sample.img1} ({img1.shape[1]}x{img1.shape[0]})')
    if sample.mask_kind == INVALID_PNG:
        invalid = flowio.read_mask_png(sample.mask)
        if invalid.shape != img1.shape[:2]:
            raise UserError(f'{sample.mask}: mask size {invalid.shape[1]}x{invalid.shape[0]} '
                            f'differs from image {sample.img1}')
        valid = ~invalid
    elif sample.mask_kind == FLOW_VALID:
        if valid is None:
            raise UserError(f'{sample.flow}: expected a KITTI-format flow PNG holding a valid bit')
        flow = flow * valid[..., np.newaxis]  # invalid pixels carry no flow (KITTI stores 0 there)
    elif sample.mask_kind == LISTED:
        if valid is not None:
            flow = flow * valid[..., np.newaxis]   # as for KITTI
        else:
            valid = np.ones(img1.shape[:2], bool)
        if sample.mask is not None:
            listed = _read_mask(sample.mask, img1, sample.img1)
            valid = valid & listed
    elif sample.mask_kind is not None:
        raise ValueError(f'unknown mask kind {sample.mask_kind!r}')
    else:
        valid = None

    img1, img2, flow, valid = _crop(sample, [img1, img2, flow, valid])
    if sample.normalize:
        img1, img2 = _normalize_pair(img1, img2)

    mask = None
    if sample.resize_hw is not None:
        new_h, new_w = sample.resize_hw
        img1, img2 = (cv2.resize(img, (new_w, new_h)) for img in (img1, img2))
        if flow is not None:
            if valid is None:
                valid = np.ones(flow.shape[:2], bool)
            flow, mask = sparse_resize(flow, valid.astype(np.float32), sample.resize_hw)
            if sample.mask_kind is None:
                mask = None
    elif valid is not None:
        mask = valid.astype(np.uint8)[..., np.newaxis] * np.uint8(255)
    return Example(np.ascontiguousarray(img1), np.ascontiguousarray(img2),
                   None if flow is None else np.ascontiguousarray(flow, dtype=np.float32),
                   None if mask is None else np.ascontiguousarray(mask))


def _read_mask(path, img1, img1_path):
    """A custom list's VALID or OCC PNG (8- or 16-bit, non-zero = set), of the image's size."""
    mask = flowio.read_mask_png(path, sixteen_bit=True)
    if mask.shape != img1.shape[:2]:
        raise UserError(f'{path}: mask size {mask.shape[1]}x{mask.shape[0]} differs from image '
                        f'{img1_path} ({img1.shape[1]}x{img1.shape[0]})')
    return mask


def load_occlusion(sample):
    """The sample's occlusion ground truth as an H x W bool map (True = occluded), through the
    same crop, trim and resize (nearest neighbour) as its flow; None when it has none."""
    if sample.occ is None:
        return None
    with _listed_at(sample):
        height, width = flowio.image_size(sample.img1)
        if sample.occ_kind == OCC_PNG:
            occluded = flowio.read_mask_png(sample.occ, sixteen_bit=True)
        elif sample.occ_kind == NOC_FLOW:
            occluded = ~flowio.read_kitti_flow_png(sample.occ)[1]
        else:
            raise ValueError(f'unknown occlusion kind {sample.occ_kind!r}')
        if occluded.shape != (height, width):
            raise UserError(f'{sample.occ}: occlusion map size {occluded.shape[1]}x'
                            f'{occluded.shape[0]} differs from image {sample.img1} '
                            f'({width}x{height})')
        occluded, = _crop(sample, [occluded])
        if sample.resize_hw is not None:
            new_h, new_w = sample.resize_hw
            occluded = cv2.resize(occluded.astype(np.uint8), (new_w, new_h),
                                  interpolation=cv2.INTER_NEAREST) > 0
        return np.ascontiguousarray(occluded)


# --- checks before work ---------------------------------------------------------------------

CHECK_THREADS = 4       # headers and float payloads are read by this many threads at once


def check_lines(lines, check, description=None):
    """``check(line)`` for every line, on CHECK_THREADS threads (the work is reading files);
    their results in order. The first problem in line order is raised, and the lines after it
    that are not under way yet are not checked."""
    ahead = 4 * CHECK_THREADS
    results, pending = [], collections.deque()
    with ThreadPoolExecutor(max_workers=CHECK_THREADS) as pool, \
            tqdm(total=len(lines), desc=description, unit='line', leave=False,
                 disable=None if description else True) as bar:
        try:
            for line in lines:
                pending.append(pool.submit(check, line))
                if len(pending) >= ahead:
                    results.append(pending.popleft().result())
                    bar.update()
            while pending:
                results.append(pending.popleft().result())
                bar.update()
        finally:
            for future in pending:
                future.cancel()
    return results


def check_files(sample):
    """Raise UserError, naming the file, unless the sample's files are there, complete and of
    one size (a .flo whose length does not match its header, an image of another size, a mask
    of another size; PNG, JPEG and PPM images read in full, see flowio.check_image_complete):
    what a run finds before its first step instead of at a validation hours in. Values (a NaN
    in a flow) are checked when read. A custom list's sample names its line first."""
    with _listed_at(sample):
        _check_files(sample)


def _check_files(sample):
    size = flowio.whole_image_size(sample.img1)
    other = flowio.whole_image_size(sample.img2)
    if other != size:
        raise UserError(f'{sample.img2}: size {other[1]}x{other[0]} differs from {sample.img1} '
                        f'({size[1]}x{size[0]})')
    if sample.flow is not None:
        flow = flowio.flow_size(sample.flow)
        if flow != size:
            raise UserError(f'{sample.flow}: flow size {flow[1]}x{flow[0]} differs from image '
                            f'{sample.img1} ({size[1]}x{size[0]})')
    if sample.mask is not None and Path(sample.mask).suffix.lower() == '.png':
        height, width = flowio.png_header(sample.mask)[:2]
        if (height, width) != size:
            raise UserError(f'{sample.mask}: mask size {width}x{height} differs from image '
                            f'{sample.img1}')


def check_sets(sets, description='checking validation files'):
    """check_files for every sample of ``sets`` ({name: [Sample]}), on a few threads."""
    samples = [s for samples in sets.values() for s in samples]
    check_lines(samples, check_files, description if samples else None)
