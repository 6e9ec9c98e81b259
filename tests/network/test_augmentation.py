"""Geometric and photometric training augmentation against an independent numpy derivation.

The geometric tests use an analytic texture: frame 2 is frame 1 moved by a known (dx, dy), so
the flow is that constant. For a crop that maps output pixel p to source pixel A(p) in frame 1
and B(p) in frame 2, the augmented flow must be B^-1(A(p) + d) - p; warping the augmented
frame 2 by it must give back the augmented frame 1.
"""
import math

import mxnet as mx
import numpy as np
import pytest

from network.augmentation import (COLOR_ARGS, GEOMETRY_ARGS, ColorAugmentation,
                                  GeometryAugmentation, GeometryParams, make_augmentations)

ORIG = (64, 96)      # (H, W) px
TARGET = (48, 80)
SHIFTS = np.array([[5.0, -3.0], [-4.0, 2.5]])   # per-sample (dx, dy) px, frame 1 -> frame 2
N = len(SHIFTS)


def texture(x, y):
    """Smooth 3-channel pattern in [0.25, 0.75]; periods >= 13 px keep bilinear error < 0.005."""
    channels = []
    for c in range(3):
        channels.append(0.5 + 0.12 * np.sin(2 * np.pi * (x / 19 + y / 31) + 1.3 * c)
                        + 0.09 * np.sin(2 * np.pi * (x / 27 - y / 17) + 2.1 * c)
                        + 0.03 * np.cos(2 * np.pi * y / 13 + c))
    return np.stack(channels, axis=-3)


def frame(k, x, y, second):
    """Frame 1 of sample k, or frame 2 = frame 1 moved by SHIFTS[k], at source pixels (x, y)."""
    if second:
        return texture(x - SHIFTS[k, 0], y - SHIFTS[k, 1])
    return texture(x, y)


def make_batch(mask=None):
    y, x = np.mgrid[0:ORIG[0], 0:ORIG[1]].astype(np.float64)
    img1 = np.stack([frame(k, x, y, False) for k in range(N)])
    img2 = np.stack([frame(k, x, y, True) for k in range(N)])
    flow = np.broadcast_to(SHIFTS[:, :, None, None], (N, 2) + ORIG).copy()
    mask = np.ones((N, 1, 1, 1)) if mask is None else mask
    return [mx.nd.array(a) for a in (img1, img2, flow, mask)]


def geometry(**kwargs):
    args = dict(angle_range=(0, 0), zoom_range=(1, 1), translation_range=0,
                target_shape=TARGET, orig_shape=ORIG, batch_size=N)
    args.update(kwargs)
    return GeometryAugmentation(**args)


def output_pixels():
    """Output pixel coordinates (x, y), each (Ht, Wt)."""
    y, x = np.mgrid[0:TARGET[0], 0:TARGET[1]].astype(np.float64)
    return x, y


def rot(angle):
    return np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])


def pixel_maps(params, k):
    """Frame 1 and frame 2 source maps of sample k as (linear, offset): q = linear (p - c) + offset.

    Derived in pixels from the documented parameter meaning, independently of the block's code.
    """
    val = {name: (None if v is None else v.asnumpy().reshape(N, -1)[k])
           for name, v in params._asdict().items()}
    orig_ext = np.array([ORIG[1] - 1, ORIG[0] - 1], dtype=np.float64)
    target_centre = np.array([TARGET[1] - 1, TARGET[0] - 1]) / 2
    scale, aspect = float(val['scale'][0]), float(val['aspect'][0])
    lin1 = np.diag([scale * aspect, scale]) @ rot(float(val['rotation'][0]))
    lin2 = lin1 @ (float(val['rel_scale'][0]) * rot(float(val['rel_rotation'][0])))
    offset1 = orig_ext / 2 * (1 + np.array([val['shift_x'][0], val['shift_y'][0]]))
    corners = np.array([[0, 0], [TARGET[1] - 1, 0], [0, TARGET[0] - 1],
                        [TARGET[1] - 1, TARGET[0] - 1]]) - target_centre
    reach = corners @ lin1.T + offset1
    offset1 = offset1 - (np.maximum(reach.max(0) - orig_ext, 0) + np.minimum(reach.min(0), 0))
    offset2 = offset1.copy()
    if val['rel_shift'] is not None:
        offset2 += val['rel_shift'] * orig_ext / 2
    return (lin1, offset1), (lin2, offset2)


def apply_map(m, x, y):
    lin, off = m
    c = np.array([TARGET[1] - 1, TARGET[0] - 1]) / 2
    dx, dy = x - c[0], y - c[1]
    return lin[0, 0] * dx + lin[0, 1] * dy + off[0], lin[1, 0] * dx + lin[1, 1] * dy + off[1]


def expected_flow(map1, map2, d, x, y):
    """B^-1(A(p) + d) - p."""
    qx, qy = apply_map(map1, x, y)
    lin2, off2 = map2
    c = np.array([TARGET[1] - 1, TARGET[0] - 1]) / 2
    inv = np.linalg.inv(lin2)
    rx, ry = qx + d[0] - off2[0], qy + d[1] - off2[1]
    return np.stack([inv[0, 0] * rx + inv[0, 1] * ry + c[0] - x,
                     inv[1, 0] * rx + inv[1, 1] * ry + c[1] - y])


def original_flow_error(params, k, map1, map2, d):
    """What the original adds to the exact flow: it inverts diag(s*a, s) R(angle) as
    diag(1/(s*a), 1/s) R(-angle), which is exact only for aspect a == 1. Constant over pixels."""
    scale = params.scale.asnumpy()[k]
    aspect = params.aspect.asnumpy()[k]
    angle = params.rotation.asnumpy()[k]
    approx_inverse = np.diag([1 / (scale * aspect), 1 / scale]) @ rot(angle).T
    lin1, off1 = map1
    lin2, off2 = map2
    rel = np.linalg.solve(lin1, lin2)                 # the relative transform Lr
    shift_px = off2 - off1                            # frame 2's relative translation
    return np.linalg.solve(rel, (approx_inverse - np.linalg.inv(lin1)) @ (d - shift_px))


def bilinear(img, x, y):
    """Sample (C, H, W) at float pixel positions; NaN where a neighbour is outside."""
    h, w = img.shape[1:]
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    inside = (x0 >= 0) & (y0 >= 0) & (x0 + 1 < w) & (y0 + 1 < h)
    x0c, y0c = np.clip(x0, 0, w - 2), np.clip(y0, 0, h - 2)
    fx, fy = x - x0c, y - y0c
    out = ((1 - fx) * (1 - fy) * img[:, y0c, x0c] + fx * (1 - fy) * img[:, y0c, x0c + 1]
           + (1 - fx) * fy * img[:, y0c + 1, x0c] + fx * fy * img[:, y0c + 1, x0c + 1])
    return np.where(inside, out, np.nan)


def assert_photometric_consistency(img1, img2, flow):
    """Warping output frame 2 by the output flow reproduces output frame 1 (interior pixels)."""
    x, y = output_pixels()
    for k in range(N):
        # Frame 2 pixels sampled from outside the source are zero-padded; drop them and their
        # interpolation neighbours (the texture itself never goes below 0.25).
        padded = img2[k].min(axis=0) < 0.2
        grown = padded.copy()
        grown[1:] |= padded[:-1]
        grown[:-1] |= padded[1:]
        grown[:, 1:] |= padded[:, :-1]
        grown[:, :-1] |= padded[:, 1:]
        warped = bilinear(np.where(grown, np.nan, img2[k]), x + flow[k, 0], y + flow[k, 1])
        unwarped = bilinear(np.where(grown, np.nan, img2[k]), x, y)
        valid = ~np.isnan(warped).any(0) & ~np.isnan(unwarped).any(0)
        assert valid.mean() > 0.5, 'sample %d: too few interior pixels' % k
        err = np.abs(warped - img1[k])[:, valid].mean()
        err_zero = np.abs(unwarped - img1[k])[:, valid].mean()
        assert err < 0.01 and err < 0.15 * err_zero, (
            'sample %d: warp error %.4f vs zero-flow error %.4f' % (k, err, err_zero))


def run(block, *inputs):
    return [o.asnumpy().astype(np.float64) for o in block(*inputs)]


# ---------------------------------------------------------------- geometry, degenerate ranges

@pytest.mark.parametrize('hybrid', [False, True])
def test_pure_crop_keeps_flow_and_images_consistent(hybrid):
    block = geometry()
    if hybrid:
        block.hybridize()
    img1, img2, flow, mask = run(block, *make_batch())
    assert img1.shape == (N, 3) + TARGET and flow.shape == (N, 2) + TARGET
    assert mask.shape == (N, 1) + TARGET
    np.testing.assert_allclose(mask, 1, atol=1e-6)
    np.testing.assert_allclose(flow, np.broadcast_to(SHIFTS[:, :, None, None], flow.shape),
                               atol=1e-4)
    assert_photometric_consistency(img1, img2, flow)


def test_rotation_and_zoom_without_relative_transform():
    angle, zoom = 12.0, 0.8
    block = geometry(angle_range=(angle, angle), zoom_range=(zoom, zoom))
    block.hybridize()
    img1, img2, flow, _ = run(block, *make_batch())
    # Both frames share the crop map A, so the flow is A^-1 d everywhere.
    inv = np.linalg.inv(zoom * rot(math.radians(angle)))
    for k in range(N):
        want = inv @ SHIFTS[k]
        np.testing.assert_allclose(flow[k], np.broadcast_to(want[:, None, None], flow[k].shape),
                                   atol=1e-4)
    assert_photometric_consistency(img1, img2, flow)


def test_relative_rotation_and_zoom():
    angle, zoom, rel_fraction, rel_scale = 10.0, 0.9, 0.5, 1.05
    block = geometry(angle_range=(angle, angle), zoom_range=(zoom, zoom),
                     relative_angle=rel_fraction, relative_scale=(rel_scale, rel_scale))
    block.hybridize()
    img1, img2, flow, _ = run(block, *make_batch())
    # Frame 2 is frame 1's crop composed with Lr = rel_scale R(rel angle) about the output
    # centre: flow = (Lr^-1 - I)(p - c) + Lr^-1 A^-1 d.
    lin1 = zoom * rot(math.radians(angle))
    rel_inv = np.linalg.inv(rel_scale * rot(math.radians(angle * rel_fraction)))
    x, y = output_pixels()
    c = np.array([TARGET[1] - 1, TARGET[0] - 1]) / 2
    for k in range(N):
        const = rel_inv @ np.linalg.solve(lin1, SHIFTS[k])
        move = rel_inv - np.eye(2)
        want = np.stack([move[0, 0] * (x - c[0]) + move[0, 1] * (y - c[1]) + const[0],
                         move[1, 0] * (x - c[0]) + move[1, 1] * (y - c[1]) + const[1]])
        np.testing.assert_allclose(flow[k], want, atol=1e-3)
    assert_photometric_consistency(img1, img2, flow)


# ---------------------------------------------------------------- geometry, random draws

RANDOM_CONFIGS = {
    'sintel': GEOMETRY_ARGS['sintel'],
    # Zoom beyond what fits and a large translation: exercises the clamp and force-translation.
    'clamped': dict(angle_range=(-30, 30), zoom_range=(1.5, 2.0), translation_range=0.5,
                    relative_angle=0.5, relative_scale=(0.9, 1.1), relative_translation=0.5),
}


@pytest.mark.parametrize('config', sorted(RANDOM_CONFIGS))
@pytest.mark.parametrize('seed', [1, 7])
def test_random_transform_matches_numpy_derivation(config, seed):
    block = geometry(**RANDOM_CONFIGS[config])
    mx.random.seed(seed)
    params = block.sample(mx.nd)
    mx.random.seed(seed)     # the forward pass draws the same parameters again
    img1, img2, flow, mask = run(block, *make_batch())
    x, y = output_pixels()
    for k in range(N):
        map1, map2 = pixel_maps(params, k)
        # The scale clamp and the force-translation keep frame 1's crop inside the source.
        qx, qy = apply_map(map1, x, y)
        assert qx.min() > -1e-3 and qy.min() > -1e-3
        assert qx.max() < ORIG[1] - 1 + 1e-3 and qy.max() < ORIG[0] - 1 + 1e-3
        np.testing.assert_allclose(img1[k], frame(k, qx, qy, False), atol=0.01)
        np.testing.assert_allclose(mask[k], 1, atol=1e-5)
        rx, ry = apply_map(map2, x, y)
        inside = (rx >= 0) & (ry >= 0) & (rx <= ORIG[1] - 1) & (ry <= ORIG[0] - 1)
        assert inside.mean() > 0.5
        np.testing.assert_allclose(img2[k][:, inside], frame(k, rx, ry, True)[:, inside], atol=0.01)
        want = expected_flow(map1, map2, SHIFTS[k], x, y)
        want += original_flow_error(params, k, map1, map2, SHIFTS[k])[:, None, None]
        np.testing.assert_allclose(flow[k], want, atol=2e-3)
    assert_photometric_consistency(img1, img2, flow)


def test_zoom_is_clamped_so_the_rotated_crop_fits():
    block = geometry(angle_range=(-30, 30), zoom_range=(1.5, 2.0), aspect_range=(0.9, 1.1),
                     batch_size=200)
    mx.random.seed(3)
    params = block.sample(mx.nd)
    angle = np.abs(params.rotation.asnumpy())
    aspect, scale = params.aspect.asnumpy(), params.scale.asnumpy()
    (th, tw), (oh, ow) = np.array(TARGET) - 1, np.array(ORIG) - 1
    # Every draw overshoots, so the zoom is the largest that fits the rotated, stretched crop.
    fit_x = ow / (aspect * (tw * np.cos(angle) + th * np.sin(angle)))
    fit_y = oh / (tw * np.sin(angle) + th * np.cos(angle))
    np.testing.assert_allclose(scale, np.minimum(fit_x, fit_y), rtol=1e-5)
    assert (fit_x < fit_y).any() and (fit_y < fit_x).any()


def test_crop_position_uses_the_room_left_by_the_zoom_alone():
    zoom, translation = 0.7, 0.05
    block = geometry(angle_range=(20, 20), zoom_range=(zoom, zoom), translation_range=translation,
                     batch_size=4000)
    mx.random.seed(5)
    params = block.sample(mx.nd)
    # Room in normalised units, ignoring the rotation (kept from the original), plus the
    # uniform extra translation of +-2 * translation_range.
    room_x = 1 - zoom * (TARGET[1] - 1) / (ORIG[1] - 1) + 2 * translation
    room_y = 1 - zoom * (TARGET[0] - 1) / (ORIG[0] - 1) + 2 * translation
    for shift, room in ((params.shift_x.asnumpy(), room_x), (params.shift_y.asnumpy(), room_y)):
        assert np.abs(shift).max() <= room + 1e-6
        assert np.abs(shift).max() > 0.97 * room
        assert abs(shift.mean()) < 0.05


def fixed_params(rotation_deg, aspect, scale, rel_rotation_deg, rel_scale, rel_shift):
    """The same transform for every sample, crop centred."""
    def full(v):
        return mx.nd.full((N,), v)
    rel_shift = mx.nd.array(np.tile(np.reshape(rel_shift, (1, 2, 1, 1)), (N, 1, 1, 1)))
    return GeometryParams(full(math.radians(rotation_deg)), full(aspect), full(scale), full(0.0),
                          full(0.0), full(math.radians(rel_rotation_deg)), full(rel_scale),
                          rel_shift)


def test_aspect_with_rotation_keeps_the_original_inexact_correction():
    """The original inverts diag(s*a, s) R as diag(1/(s*a), 1/s) R^T; exact only for a == 1."""
    block = geometry()
    params = fixed_params(17, 0.9, 0.8, rel_rotation_deg=3, rel_scale=1.02, rel_shift=(0.02, -0.03))
    img1, img2, flow, _ = [o.asnumpy().astype(np.float64)
                           for o in block.apply(mx.nd, *make_batch(), params)]
    x, y = output_pixels()
    theta, a, s = math.radians(17), 0.9, 0.8
    quirk_inverse = np.diag([1 / (s * a), 1 / s]) @ rot(theta).T
    rel_inv = np.linalg.inv(1.02 * rot(math.radians(3)))
    for k in range(N):
        map1, map2 = pixel_maps(params, k)
        rx, ry = apply_map(map2, x, y)
        np.testing.assert_allclose(img2[k], frame(k, rx, ry, True), atol=0.01)
        exact = expected_flow(map1, map2, SHIFTS[k], x, y)
        # Replace the exact A^-1 with the original's product in the constant part of the flow.
        shift_px = np.array([0.02 * (ORIG[1] - 1) / 2, -0.03 * (ORIG[0] - 1) / 2])
        delta = rel_inv @ (quirk_inverse - np.linalg.inv(map1[0])) @ (SHIFTS[k] - shift_px)
        np.testing.assert_allclose(flow[k], exact + delta[:, None, None], atol=2e-3)
        assert np.abs(delta).max() > 0.05
    assert_photometric_consistency(img1, img2, flow)


def test_flow_resampling_ignores_invalid_pixels():
    mask = np.ones((N, 1) + ORIG)
    mask[:, :, 20:40, 30:50] = 0
    img1, img2, flow, mask_in = make_batch(mask)
    flow = flow.asnumpy()
    flow[:, :, 20:40, 30:50] = 1000.0     # garbage where the label is invalid
    block = geometry(angle_range=(8, 8), zoom_range=(0.9, 0.9))
    out_img1, _, out_flow, out_mask = run(block, img1, img2, mx.nd.array(flow), mask_in)
    inv = np.linalg.inv(0.9 * rot(math.radians(8)))
    partial = (out_mask > 1e-6) & (out_mask < 1 - 1e-6)
    assert partial.any() and (out_mask < 1e-6).any()
    for k in range(N):
        valid = out_mask[k, 0] > 1e-6
        want = inv @ SHIFTS[k]
        np.testing.assert_allclose(out_flow[k][:, valid], np.repeat(want[:, None], valid.sum(), 1),
                                   atol=1e-3)
        assert np.abs(out_flow[k][:, ~valid]).max() < 1e-3


def test_identity_geometry_leaves_everything_untouched():
    block = GeometryAugmentation(angle_range=(0, 0), zoom_range=(1, 1), translation_range=0,
                                 target_shape=ORIG, orig_shape=ORIG, batch_size=N)
    block.hybridize()
    inputs = make_batch()
    outputs = run(block, *inputs)
    for name, got, given in zip(('img1', 'img2', 'flow'), outputs, inputs):
        np.testing.assert_allclose(got, given.asnumpy(), atol=1e-4, err_msg=name)
    np.testing.assert_allclose(outputs[3], 1, atol=1e-6)


# ---------------------------------------------------------------- photometric

COLOR_OFF = dict(contrast_range=(0, 0), brightness_sigma=0, channel_range=(1, 1),
                 noise_range=(0, 0), saturation=0, hue=0)
# The original's mixing matrix is not exactly the identity at zero saturation/hue jitter.
MIX_TOL = 3e-3


def color(hybrid=True, **kwargs):
    args = dict(COLOR_OFF, batch_size=N, shape=TARGET)
    args.update(kwargs)
    block = ColorAugmentation(**args)
    if hybrid:
        block.hybridize()
    return block


def mid_images(seed=0, spread=0.1):
    """Two frames in [0.5 - spread, 0.5 + spread]: no clipping for moderate jitter."""
    rng = np.random.default_rng(seed)
    img = 0.5 + spread * (2 * rng.random((2, N, 3) + TARGET) - 1)
    return img, [mx.nd.array(i) for i in img]


def test_contrast_and_brightness_are_shared_per_sample():
    mx.random.seed(0)
    img, inputs = mid_images()
    block = color(contrast_range=(-0.4, 0.8), brightness_sigma=0.02)
    out = np.stack(run(block, *inputs))
    assert not np.allclose(out, img, atol=0.01)
    assert out.min() >= 0 and out.max() <= 1
    ratio = out.std(axis=(3, 4)) / img.std(axis=(3, 4))        # (frame, N, channel)
    shift = out.mean(axis=(3, 4)) - img.mean(axis=(3, 4))
    for k in range(N):
        assert 0.6 - MIX_TOL < ratio[:, k].min() and ratio[:, k].max() < 1.8 + MIX_TOL
        assert np.ptp(ratio[:, k]) < 0.02, 'contrast differs between channels or frames'
        assert np.ptp(shift[:, k]) < MIX_TOL, 'brightness differs between channels or frames'
        assert abs(shift[0, k].mean()) < 5 * 0.02
    assert np.ptp(ratio[0, :, 0]) > 0.01, 'contrast should vary between samples'


def test_channel_gain_scales_each_channel():
    mx.random.seed(1)
    img, inputs = mid_images()
    out = np.stack(run(color(channel_range=(0.8, 1.4)), *inputs))
    gain = out.mean(axis=(3, 4)) / img.mean(axis=(3, 4))
    std_gain = out.std(axis=(3, 4)) / img.std(axis=(3, 4))
    assert ((gain > 0.8 - MIX_TOL) & (gain < 1.4 + MIX_TOL)).all()
    np.testing.assert_allclose(std_gain, gain, atol=0.01)
    np.testing.assert_allclose(gain[0], gain[1], atol=MIX_TOL)      # both frames alike


def test_contrast_about_the_channel_mean():
    img, _ = mid_images()
    img = img + np.array([-0.2, 0.0, 0.2])[:, None, None]     # distinct channel means
    inputs = [mx.nd.array(i) for i in img]
    out = np.stack(run(color(contrast_range=(0.5, 0.5)), *inputs))
    mean = img.mean(axis=(3, 4), keepdims=True)
    np.testing.assert_allclose(out, mean + 1.5 * (img - mean), atol=MIX_TOL)


def test_saturation_and_hue_keep_luma():
    mx.random.seed(2)
    img, inputs = mid_images(spread=0.2)
    out = np.stack(run(color(saturation=0.5, hue=0.5), *inputs))
    luma = np.array([0.299, 0.587, 0.114])[:, None, None]
    np.testing.assert_allclose((out * luma).sum(2), (img * luma).sum(2), atol=MIX_TOL)
    assert np.abs(out - img).max() > 0.05
    gray = np.repeat(img[:, :, :1], 3, axis=2)
    out_gray = np.stack(run(color(saturation=0.5, hue=0.5), *[mx.nd.array(g) for g in gray]))
    np.testing.assert_allclose(out_gray, gray, atol=MIX_TOL)


def test_noise_is_fresh_per_frame():
    mx.random.seed(4)
    img, inputs = mid_images(spread=0.0)
    out = np.stack(run(color(noise_range=(0.05, 0.05)), *inputs))
    noise = out - img
    assert abs(noise.std() - 0.05) < 0.005
    corr = np.corrcoef(noise[0].ravel(), noise[1].ravel())[0, 1]
    assert abs(corr) < 0.1


def test_gamma_is_exponential_of_the_range():
    img, inputs = mid_images(spread=0.3)
    out = np.stack(run(color(gamma_range=(0.3, 0.3)), *inputs))
    np.testing.assert_allclose(out, img ** math.exp(0.3), atol=MIX_TOL)


def test_kitti_settings_with_gamma_stay_in_range():
    mx.random.seed(5)
    img, inputs = mid_images(spread=0.5)
    block = ColorAugmentation(batch_size=N, shape=TARGET, **COLOR_ARGS['kitti'])
    block.hybridize()
    out = np.stack(run(block, *inputs))
    assert out.min() >= 0 and out.max() <= 1 and not np.allclose(out, img, atol=0.01)


# ---------------------------------------------------------------- per-dataset settings

@pytest.mark.parametrize('dataset, zoom, angle, shift, rel_scale, contrast, noise, gamma', [
    ('sintel', (1 / 1.5, 1 / 0.9), 17, 0.2, (0.96, 1 / 0.96), (-0.4, 0.8), (0, 0), None),
    ('kitti', (1 / 1.25, 1 / 0.95), 5, 0.1, (0.98, 1 / 0.98), (-0.2, 0.4), (0, 0.02), (-0.5, 0.5)),
    ('chairs', (0.5, 1 / 0.9), 17, 0.2, (0.96, 1 / 0.96), (-0.4, 0.8), (0, 0.04), None),
    ('things3d', (0.5, 1 / 0.9), 17, 0.2, (0.96, 1 / 0.96), (-0.4, 0.8), (0, 0.04), None),
])
def test_make_augmentations_uses_the_original_settings(dataset, zoom, angle, shift, rel_scale,
                                                       contrast, noise, gamma):
    geo, col = make_augmentations(dataset, TARGET, ORIG, N)
    assert geo._active and col._active
    np.testing.assert_allclose(geo.zoom_range, zoom)
    np.testing.assert_allclose(geo.angle_range, (-math.radians(angle), math.radians(angle)))
    np.testing.assert_allclose(geo.shift_range, (-shift, shift))
    np.testing.assert_allclose(geo.rel_angle_range, np.array(geo.angle_range) / 4)
    np.testing.assert_allclose(geo.rel_shift_range, (-shift / 4, shift / 4))
    np.testing.assert_allclose(geo.rel_scale_range, rel_scale)
    assert geo.target_shape == TARGET and geo.orig_shape == ORIG and geo.batch_size == N
    np.testing.assert_allclose(col.contrast_range, contrast)
    np.testing.assert_allclose(col.noise_range, noise)
    assert col.gamma_range == gamma and col.shape == TARGET
    outputs = geo(*make_batch())
    assert outputs[2].shape == (N, 2) + TARGET
    assert col(outputs[0], outputs[1])[0].shape == (N, 3) + TARGET
