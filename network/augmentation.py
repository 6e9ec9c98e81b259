"""Training-time data augmentation that runs on the training device, as in the original.

Both blocks are HybridBlocks built from MXNet ops only (random draws, GridGenerator,
BilinearSampler), so a hybridized pipeline augments a batch without a host round trip.

``GeometryAugmentation`` takes flows in (x, y) pixel channel order: the original train step
augments the label *before* flipping it to the network's (y, x) order. Its output is still
(x, y); the caller flips afterwards.

Random parameters are drawn per sample; a block is built for one ``batch_size`` (the batch per
device) and expects exactly that many samples.
"""
import math
from collections import namedtuple

from mxnet.gluon import nn


# Per-sample parameters of one geometric draw; every field is an (N,) array unless noted.
#   rotation, aspect, scale: frame 1 crop (radians, x/y stretch, zoom with the clamp applied)
#   shift_x, shift_y: frame 1 crop centre offset in normalised source coordinates ([-1, 1])
#   rel_rotation, rel_scale: frame 2 relative to frame 1, in output pixel coordinates
#   rel_shift: (N, 2, 1, 1) normalised (x, y) offset of frame 2, or None when not drawn
GeometryParams = namedtuple('GeometryParams', 'rotation aspect scale shift_x shift_y '
                                              'rel_rotation rel_scale rel_shift')


# 2x2 per-sample matrices are kept as tuples (m00, m01, m10, m11) of (N,) arrays: the entries
# are few and named, and the same code then works on NDArrays and Symbols.
def _scaled_rotation(F, angle, scale_x, scale_y):
    """diag(scale_x, scale_y) @ R(angle), R rotating +x towards +y (image y points down)."""
    cos, sin = F.cos(angle), F.sin(angle)
    return (scale_x * cos, -scale_x * sin, scale_y * sin, scale_y * cos)


def _matmul(a, b):
    return (a[0] * b[0] + a[1] * b[2], a[0] * b[1] + a[1] * b[3],
            a[2] * b[0] + a[3] * b[2], a[2] * b[1] + a[3] * b[3])


def _per_sample(F, x):
    """(N,) -> (N, 1, 1, 1), to broadcast over a batch of maps."""
    return F.reshape(x, (-1, 1, 1, 1))


def _apply_to_field(F, m, fx, fy):
    """Apply per-sample 2x2 matrices ``m`` to the vector field (fx, fy)."""
    m = [_per_sample(F, e) for e in m]
    return (F.broadcast_add(F.broadcast_mul(fx, m[0]), F.broadcast_mul(fy, m[1])),
            F.broadcast_add(F.broadcast_mul(fx, m[2]), F.broadcast_mul(fy, m[3])))


def _symmetric(value):
    """A range ``(lo, hi)`` as given, or ``value`` read as ``(-value, value)``."""
    try:
        lo, hi = value
    except TypeError:
        return (-float(value), float(value))
    return (float(lo), float(hi))


class GeometryAugmentation(nn.HybridBlock):
    """Random similarity crop of frame 1, a small extra transform of frame 2, matching flow.

    Frame 1 is sampled through ``rotation`` (``angle_range``, degrees), a zoom
    (``zoom_range``; >1 samples a larger source area) with an optional x/y stretch
    (``aspect_range``), and a crop position. Frame 2 additionally gets a relative rotation
    (``relative_angle`` times ``angle_range``), zoom (``relative_scale``) and translation
    (``relative_translation`` times ``translation_range``); ``relative_angle=None`` turns the
    relative transform off. ``translation_range`` is a fraction of the image size.

    ``forward(img1, img2, flow, mask)``: images (N, 3, H, W), flow (N, 2, H, W) in (x, y)
    pixels, mask (N, 1, H, W) or (N, 1, 1, 1), all at ``orig_shape`` (H, W). Returns the four
    at ``target_shape``; the mask comes back as the resampled (fractional) validity.
    """

    def __init__(self, angle_range, zoom_range, translation_range, target_shape, orig_shape,
                 batch_size, aspect_range=None, relative_angle=None, relative_scale=None,
                 relative_translation=None, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = tuple(int(s) for s in target_shape)
        self.orig_shape = tuple(int(s) for s in orig_shape)
        self.batch_size = int(batch_size)
        self.angle_range = tuple(math.radians(a) for a in angle_range)
        self.zoom_range = tuple(float(z) for z in zoom_range)
        self.aspect_range = None if aspect_range is None else tuple(float(a) for a in aspect_range)
        # Normalised coordinates span 2 per image size, hence the factor 2.
        self.shift_range = tuple(2 * t for t in _symmetric(translation_range))
        self.relative = relative_angle is not None
        if self.relative:
            self.rel_angle_range = tuple(a * relative_angle for a in self.angle_range)
            self.rel_scale_range = tuple(float(s) for s in (relative_scale or (1.0, 1.0)))
            self.rel_shift_range = (None if relative_translation is None else
                                    tuple(s * relative_translation for s in self.shift_range))
        else:
            self.rel_angle_range, self.rel_scale_range, self.rel_shift_range = None, None, None

    @property
    def _orig_extent(self):
        """(x, y) distance in pixels between the first and the last source pixel centre."""
        return (self.orig_shape[1] - 1, self.orig_shape[0] - 1)

    @property
    def _target_extent(self):
        return (self.target_shape[1] - 1, self.target_shape[0] - 1)

    def sample(self, F):
        """Draw one batch of transform parameters (a GeometryParams of F arrays)."""
        n = self.batch_size
        (ow, oh), (tw, th) = self._orig_extent, self._target_extent
        rotation = F.random.uniform(*self.angle_range, shape=(n,))
        aspect = (F.random.uniform(*self.aspect_range, shape=(n,)) if self.aspect_range
                  else F.ones_like(rotation))
        scale = F.random.uniform(*self.zoom_range, shape=(n,))
        # Shrink the zoom until the rotated, stretched crop fits in the source image, so the
        # force-translation below can always move it fully inside.
        cos, sin = F.cos(F.abs(rotation)), F.sin(F.abs(rotation))
        scale = F.minimum(scale, ow / (aspect * (th * sin + tw * cos)))
        scale = F.minimum(scale, oh / (th * cos + tw * sin))
        # The crop position uses the room left by the zoom alone; rotation and stretch are
        # ignored here (the force-translation repairs any overshoot). Kept for compatibility
        # with the original training.
        room_x = 1 - scale * (tw / ow)
        room_y = 1 - scale * (th / oh)
        shift_x = F.random.uniform(-1, 1, shape=(n,)) * room_x + F.random.uniform(
            *self.shift_range, shape=(n,))
        shift_y = F.random.uniform(-1, 1, shape=(n,)) * room_y + F.random.uniform(
            *self.shift_range, shape=(n,))
        if self.relative:
            rel_rotation = F.random.uniform(*self.rel_angle_range, shape=(n,))
            rel_scale = F.random.uniform(*self.rel_scale_range, shape=(n,))
            rel_shift = (None if self.rel_shift_range is None else
                         F.random.uniform(*self.rel_shift_range, shape=(n, 2, 1, 1)))
        else:
            # The original crashes without a relative transform; identity is what it meant.
            rel_rotation, rel_scale, rel_shift = F.zeros_like(scale), F.ones_like(scale), None
        return GeometryParams(rotation, aspect, scale, shift_x, shift_y,
                              rel_rotation, rel_scale, rel_shift)

    def _affine(self, F, linear, shift_x, shift_y):
        """GridGenerator parameters of a map whose linear part is in pixels (target -> source)."""
        orig, target = self._orig_extent, self._target_extent
        # Normalised coordinates: entry (i, j) is rescaled by target extent j / source extent i.
        m = [linear[2 * i + j] * (target[j] / orig[i]) for i in range(2) for j in range(2)]
        return F.stack(m[0], m[1], shift_x, m[2], m[3], shift_y, axis=1)

    def apply(self, F, img1, img2, flow, mask, params):
        """Warp one batch with given parameters; the deterministic half of ``forward``."""
        p = params
        ow, oh = self._orig_extent
        tw, th = self._target_extent
        frame1 = _scaled_rotation(F, p.rotation, p.scale * p.aspect, p.scale)
        relative = _scaled_rotation(F, p.rel_rotation, p.rel_scale, p.rel_scale)
        frame2 = _matmul(frame1, relative)

        mask = F.broadcast_like(mask, F.slice_axis(flow, axis=1, begin=0, end=1))
        if p.rel_shift is not None:
            # Frame 2 is sampled rel_shift further on, so every correspondence lands that much
            # earlier in it (converted to source pixels).
            shift_px = F.concat(F.slice_axis(p.rel_shift, axis=1, begin=0, end=1) * (ow / 2),
                                F.slice_axis(p.rel_shift, axis=1, begin=1, end=2) * (oh / 2), dim=1)
            flow = F.broadcast_sub(flow, shift_px)

        grid1 = F.GridGenerator(data=self._affine(F, frame1, p.shift_x, p.shift_y),
                                transform_type='affine', target_shape=self.target_shape)
        # Move a crop that pokes out of the source back inside, per axis.
        overshoot = (F.maximum(F.max(grid1, axis=(2, 3), keepdims=True) - 1, 0) +
                     F.minimum(F.min(grid1, axis=(2, 3), keepdims=True) + 1, 0))
        grid1 = F.clip(F.broadcast_sub(grid1, overshoot), -1, 1)
        # Resample flow weighted by validity so invalid pixels never leak into valid ones.
        stacked = F.BilinearSampler(data=F.concat(img1, mask, F.broadcast_mul(flow, mask), dim=1),
                                    grid=grid1)
        img1 = F.slice_axis(stacked, axis=1, begin=0, end=3)
        mask = F.slice_axis(stacked, axis=1, begin=3, end=4)
        flow = F.broadcast_div(F.slice_axis(stacked, axis=1, begin=4, end=6),
                               F.maximum(mask, 1e-8))

        grid2 = F.GridGenerator(data=self._affine(F, frame2, p.shift_x, p.shift_y),
                                transform_type='affine', target_shape=self.target_shape)
        grid2 = F.broadcast_sub(grid2, overshoot)
        if p.rel_shift is not None:
            grid2 = F.broadcast_add(grid2, p.rel_shift)
        img2 = F.BilinearSampler(data=img2, grid=grid2)

        # Output flow at pixel p: frame2^-1 (frame1 (p - c) + flow) - (p - c), c the output
        # centre, i.e. relative^-1 frame1^-1 flow + (relative^-1 - I)(p - c).
        inv_relative = _scaled_rotation(F, -p.rel_rotation, 1 / p.rel_scale, 1 / p.rel_scale)
        # diag(1/(s*aspect), 1/s) R(-angle) is not frame1^-1 = R(-angle) diag(...) unless
        # aspect == 1; kept for compatibility with the original training.
        inv_frame1 = _scaled_rotation(F, -p.rotation, 1 / (p.scale * p.aspect), 1 / p.scale)
        fx, fy = _apply_to_field(F, _matmul(inv_relative, inv_frame1),
                                 F.slice_axis(flow, axis=1, begin=0, end=1),
                                 F.slice_axis(flow, axis=1, begin=1, end=2))
        xs = F.reshape(F.arange(0, tw + 1) - tw / 2, (1, 1, 1, -1))
        ys = F.reshape(F.arange(0, th + 1) - th / 2, (1, 1, -1, 1))
        move = inv_relative[0] - 1, inv_relative[1], inv_relative[2], inv_relative[3] - 1
        move_x, move_y = _apply_to_field(F, move, xs, ys)
        flow = F.concat(F.broadcast_add(fx, move_x), F.broadcast_add(fy, move_y), dim=1)
        return img1, img2, flow, mask

    def hybrid_forward(self, F, img1, img2, flow, mask):
        return self.apply(F, img1, img2, flow, mask, self.sample(F))


# YIQ hue rotation with saturation gain: M = LUMA + su * U + sw * W per sample, with
# su = gain * cos(hue), sw = gain * sin(hue). The rounded coefficients (e.g. -0.300 next to
# 0.299) are kept for compatibility with the original training.
_LUMA = ((0.299, 0.587, 0.114),) * 3
_HUE_U = ((0.701, -0.587, -0.114),
          (-0.299, 0.413, -0.114),
          (-0.300, -0.588, 0.886))
_HUE_W = ((0.168, 0.330, -0.497),
          (-0.328, 0.035, 0.292),
          (1.250, -1.050, -0.203))


def _mix_channels(F, img, matrix):
    """out[:, i] = sum_j matrix[i][j] * img[:, j], entries broadcastable to (N, 1, H, W)."""
    channels = [F.slice_axis(img, axis=1, begin=j, end=j + 1) for j in range(3)]
    rows = []
    for i in range(3):
        terms = [F.broadcast_mul(channels[j], matrix[i][j]) for j in range(3)]
        rows.append(terms[0] + terms[1] + terms[2])
    return F.concat(*rows, dim=1)


class ColorAugmentation(nn.HybridBlock):
    """Photometric jitter with the same random draw for both frames of a pair.

    Per sample: saturation/hue mix (``saturation``, ``hue`` as fractions of pi), additive
    Gaussian noise (std drawn per pixel from ``noise_range``, fresh noise per frame),
    contrast about the per-channel mean (1 + ``contrast_range``), per-channel gain
    (``channel_range``), brightness offset (normal, ``brightness_sigma``), clip to [0, 1],
    then optionally gamma ``x ** exp(u)``, u from ``gamma_range``.

    ``forward(img1, img2)``: images (N, 3, H, W) in [0, 1], N = ``batch_size``, (H, W) = ``shape``.
    """

    def __init__(self, contrast_range, brightness_sigma, channel_range, batch_size, shape,
                 noise_range, saturation, hue, gamma_range=None, **kwargs):
        super().__init__(**kwargs)
        self.contrast_range = tuple(float(c) for c in contrast_range)
        self.brightness_sigma = float(brightness_sigma)
        self.channel_range = tuple(float(c) for c in channel_range)
        self.batch_size = int(batch_size)
        self.shape = tuple(int(s) for s in shape)
        self.noise_range = tuple(float(s) for s in noise_range)
        self.saturation = float(saturation)
        self.hue = float(hue)
        self.gamma_range = None if gamma_range is None else tuple(float(g) for g in gamma_range)

    def hybrid_forward(self, F, img1, img2):
        per_sample = (self.batch_size, 1, 1, 1)
        contrast = F.random.uniform(*self.contrast_range, shape=per_sample) + 1
        # A unit normal scaled afterwards lets brightness_sigma = 0 switch brightness off
        # (MXNet rejects a zero scale).
        brightness = F.random.normal(shape=per_sample) * self.brightness_sigma
        gain = F.random.uniform(*self.channel_range, shape=(self.batch_size, 3, 1, 1))
        # The original asks for one noise level, but hybridized MXNet infers the draw's shape
        # from its use: a level per pixel and channel, shared by both frames. Kept for
        # compatibility with the original training.
        noise_sigma = F.random.uniform(*self.noise_range, shape=(self.batch_size, 3) + self.shape)
        if self.gamma_range is not None:
            gamma = F.exp(F.random.uniform(*self.gamma_range, shape=per_sample))
        saturation = 1 + F.random.uniform(-self.saturation, self.saturation, shape=per_sample)
        hue = F.random.uniform(-self.hue * math.pi, self.hue * math.pi, shape=per_sample)
        su, sw = saturation * F.cos(hue), saturation * F.sin(hue)
        hue_matrix = [[_LUMA[i][j] + _HUE_U[i][j] * su + _HUE_W[i][j] * sw for j in range(3)]
                      for i in range(3)]

        out = []
        for img in (img1, img2):
            img = _mix_channels(F, img, hue_matrix)
            noise = F.random.normal(shape=(self.batch_size, 3) + self.shape)
            img = img + noise * noise_sigma
            mean = F.mean(img, axis=(2, 3), keepdims=True)
            img = F.broadcast_mul(F.broadcast_sub(img, mean), F.broadcast_mul(contrast, gain))
            img = F.broadcast_add(img, F.broadcast_add(F.broadcast_mul(mean, gain), brightness))
            img = F.clip(img, 0, 1)
            if self.gamma_range is not None:
                img = F.broadcast_power(img, gamma)
            out.append(img)
        return tuple(out)


# The original's per-dataset settings; any other dataset ('chairs', 'things3d') uses DEFAULT.
GEOMETRY_ARGS = {
    'sintel': dict(angle_range=(-17, 17), zoom_range=(1 / 1.5, 1 / 0.9),
                   aspect_range=(0.9, 1 / 0.9), translation_range=0.1, relative_angle=0.25,
                   relative_scale=(0.96, 1 / 0.96), relative_translation=0.25),
    'kitti': dict(angle_range=(-5, 5), zoom_range=(1 / 1.25, 1 / 0.95),
                  aspect_range=(0.95, 1 / 0.95), translation_range=0.05, relative_angle=0.25,
                  relative_scale=(0.98, 1 / 0.98), relative_translation=0.25),
    'default': dict(angle_range=(-17, 17), zoom_range=(0.5, 1 / 0.9),
                    aspect_range=(0.9, 1 / 0.9), translation_range=0.1, relative_angle=0.25,
                    relative_scale=(0.96, 1 / 0.96), relative_translation=0.25),
}
COLOR_ARGS = {
    'sintel': dict(contrast_range=(-0.4, 0.8), brightness_sigma=0.1, channel_range=(0.8, 1.4),
                   noise_range=(0, 0), saturation=0.5, hue=0.5),
    'kitti': dict(contrast_range=(-0.2, 0.4), brightness_sigma=0.05, channel_range=(0.9, 1.2),
                  noise_range=(0, 0.02), saturation=0.25, hue=0.1, gamma_range=(-0.5, 0.5)),
    'default': dict(contrast_range=(-0.4, 0.8), brightness_sigma=0.1, channel_range=(0.8, 1.4),
                    noise_range=(0, 0.04), saturation=0.5, hue=0.5),
}


def make_augmentations(dataset, target_shape, orig_shape, batch_size):
    """(geo_aug, color_aug), hybridized, with the original's settings for ``dataset``.

    ``batch_size`` is the batch per device; colour augmentation runs after the geometric one,
    so it works at ``target_shape``.
    """
    key = dataset if dataset in GEOMETRY_ARGS else 'default'
    geo_aug = GeometryAugmentation(target_shape=target_shape, orig_shape=orig_shape,
                                   batch_size=batch_size, **GEOMETRY_ARGS[key])
    color_aug = ColorAugmentation(batch_size=batch_size, shape=target_shape, **COLOR_ARGS[key])
    geo_aug.hybridize()
    color_aug.hybridize()
    return geo_aug, color_aug
