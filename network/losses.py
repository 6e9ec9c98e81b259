"""Training losses and validation metrics. All take flows as (N, 2, H, W) NDArrays/Symbols.

Every loss returns one value per sample (shape (N,)), as the original does.
"""
from mxnet.gluon import nn

from .layers import Upsample

MULTISCALE_WEIGHTS = (.005, .01, .02, .08, .32)


class EpeLossWithMask(nn.HybridBlock):
    """End-point error averaged over the pixels where ``mask`` (N, 1, H, W) is set.

    With ``q`` it is the robust loss ``(|du| + |dv| + eps) ** q`` used for fine-tuning on
    Sintel and KITTI instead of the Euclidean EPE.
    """

    def __init__(self, eps=1e-8, q=None, **kwargs):
        super().__init__(**kwargs)
        self.eps = eps
        self.q = q

    def hybrid_forward(self, F, pred, label, mask):
        if self.q is not None:
            err = (F.sum(F.abs(pred - label), axis=1) + self.eps) ** self.q
        else:
            err = F.sqrt(F.sum(F.square(pred - label), axis=1) + self.eps)
        err = F.broadcast_mul(err, F.squeeze(mask, axis=1))
        return F.sum(err, axis=0, exclude=True) / F.sum(mask, axis=0, exclude=True)


class MultiscaleEpe(nn.HybridBlock):
    """Weighted sum over decoder levels of the masked EPE against the full-resolution label.

    Each prediction is brought up to the label with the network's own ``Upsample``.
    ``forward(label, mask, *predictions)`` with predictions ordered like ``strides``.
    """

    def __init__(self, strides, weights=MULTISCALE_WEIGHTS, eps=1e-8,
                 q=None, **kwargs):
        super().__init__(**kwargs)
        if len(weights) != len(strides):
            raise ValueError('need one weight per stride: %d weights, %d strides'
                             % (len(weights), len(strides)))
        self.strides = list(strides)
        self.weights = list(weights)
        with self.name_scope():
            self.epe = EpeLossWithMask(eps=eps, q=q)
            self.resamplers = [Upsample(s) for s in self.strides]
            for s, block in zip(self.strides, self.resamplers):
                self.register_child(block, 'resample_%d' % s)

    def terms(self, F, label, mask, *predictions):
        """The weighted per-level losses, coarse to fine."""
        out = []
        for pred, weight, resample in zip(predictions, self.weights, self.resamplers):
            out.append(self.epe(resample(pred), label, mask) * weight)
        return out

    def hybrid_forward(self, F, label, mask, *predictions):
        return F.add_n(*self.terms(F, label, mask, *predictions))


def _norm(F, flow):
    return F.sqrt(F.sum(F.square(flow), axis=1, keepdims=True))


def kitti_outliers(F, flow, label, mask, eps=1e-8):
    """Per-sample (outlier pixels, valid pixels) of KITTI's Fl, counted with ``mask`` as weight.

    A pixel is an outlier when its end-point error is > 3 px and > 5 % of |label|.
    """
    err = _norm(F, flow - label)
    outlier = (err > 3) * ((err / (_norm(F, label) + eps)) > 0.05) * mask
    return F.sum(outlier, axis=0, exclude=True), F.sum(mask, axis=0, exclude=True)


def pooled_fl(outliers, valid):
    """KITTI's Fl-all: the outlier share of all valid pixels of all samples (NaN for none).

    ``outliers`` and ``valid`` are numpy arrays of per-sample counts (``kitti_outliers``).
    """
    valid = float(valid.sum(dtype='float64'))
    return float(outliers.sum(dtype='float64')) / valid if valid else float('nan')
