"""Parity with the original MaskFlownet: golden outputs computed by its code (tests/data/parity).

The tolerances below absorb float32 rounding only: 1e-3 on flows (px) and warped images, 1e-4
on masks, a relative 1e-5 on losses and EPE, 1e-6 on KITTI Fl.
"""
import numpy as np
import mxnet as mx
import pytest

from common.config import Config
from network.conventions import centralize
from tests.helpers import NETWORKS, NETWORKS_FULL_SLOW, assert_close

FLOW_TOL = dict(atol=1e-3, rtol=1e-5)
MASK_TOL = dict(atol=1e-4, rtol=1e-5)
WARP_TOL = dict(atol=1e-3, rtol=0)
SCALAR_TOL = dict(atol=0, rtol=1e-5)
STRIDES = (64, 32, 16, 8, 4)

pytestmark = pytest.mark.parity


def occ_key(network):
    # For MaskFlownet the occlusion output is its head's learned mask (golden head_occ_0),
    # not the cascade's y-flow channel that the original returned (a bug, fixed here).
    return 'occ_0' if network == 'MaskFlownet_S' else 'head_occ_0'


@pytest.mark.parametrize('network', NETWORKS)
def test_raw_network_outputs(network, pipelines, golden):
    pipe, inputs, raw = pipelines(network), golden(network, 'inputs'), golden(network, 'raw_subset')
    img1 = mx.nd.array(inputs['img1_rgb_uint8'][None].transpose(0, 3, 1, 2)) / 255.0
    img2 = mx.nd.array(inputs['img2_rgb_uint8'][None].transpose(0, 3, 1, 2)) / 255.0
    _, _, rgb_mean = centralize(img1, img2)
    assert_close(rgb_mean.asnumpy(), raw['rgb_mean'], 1e-6, 0, 'rgb_mean')
    predictions, occ_masks, _ = pipe.run_network(img1, img2)
    for stride, pred in zip(STRIDES, predictions):
        assert_close(pred.asnumpy(), raw['flow_s%d' % stride], what='flow_s%d' % stride, **FLOW_TOL)
    assert_close(occ_masks[0].asnumpy(), raw[occ_key(network)], what='occlusion mask', **MASK_TOL)


@pytest.mark.parametrize('network', NETWORKS)
def test_predict_single_pair(network, pipelines, golden):
    pipe, inputs, gold = pipelines(network), golden(network, 'inputs'), golden(network, 'predict')
    flow, occ_mask, warped = pipe.predict_pair(inputs['img1_rgb_uint8'], inputs['img2_rgb_uint8'],
                                               warped=True)
    assert_close(flow, gold['flow'], what='flow', **FLOW_TOL)
    assert_close(warped, gold['warped'], what='warped', **WARP_TOL)
    if network == 'MaskFlownet_S':
        assert_close(occ_mask, gold['occ_mask'], what='occ_mask', **MASK_TOL)


@pytest.mark.parametrize('network', NETWORKS_FULL_SLOW)
def test_predict_batch_of_two_and_resize(network, pipelines, golden):
    pipe, inputs, gold = pipelines(network), golden(network, 'inputs'), golden(network, 'predict')
    a, b = inputs['img1_rgb_uint8'], inputs['img2_rgb_uint8']
    results = list(pipe.predict([a, b], [b, a], batch_size=2))
    assert len(results) == 2
    for k, (flow, occ_mask, _) in enumerate(results):
        assert_close(flow, gold['batch2_flow'][k], what='batch2_flow[%d]' % k, **FLOW_TOL)
        if network == 'MaskFlownet_S':
            assert_close(occ_mask, gold['batch2_occ_mask'][k], what='batch2_occ_mask', **MASK_TOL)
    flow, occ_mask, _ = pipe.predict_pair(a, b, resize=(256, 576))
    assert_close(flow, gold['resize256x576_flow'], what='resize256x576_flow', **FLOW_TOL)
    if network == 'MaskFlownet_S':
        assert_close(occ_mask, gold['resize256x576_occ_mask'], what='resize occ_mask', **MASK_TOL)


def test_maskflownet_occlusion_output_is_the_head_mask(pipelines, golden):
    """Fixed bug: MaskFlownet's mask is the head's sigmoid mask, upsampled and resized, not the
    flow channel the original returned."""
    full, inputs = pipelines('MaskFlownet'), golden('MaskFlownet', 'inputs')
    _, occ_mask, _ = full.predict_pair(inputs['img1_rgb_uint8'], inputs['img2_rgb_uint8'])
    assert occ_mask.shape == (218, 512, 1)
    assert 0 <= occ_mask.min() and occ_mask.max() <= 1
    head_occ = golden('MaskFlownet', 'raw_subset')['head_occ_0'][0, 0]
    # Upsample(4) then resize 256 -> 218 rows: check the columns mapped exactly (x = 4 i).
    # Row 0 and column 0 of the output sit on input samples (align_corners=True).
    assert_close(occ_mask[0, ::4, 0][:128], head_occ[0, :128], what='head mask row 0', **MASK_TOL)
    # The original's output there (a flow channel, values up to 1.65) must not come back.
    assert np.abs(occ_mask[..., 0] - golden('MaskFlownet', 'predict')['occ_mask'][..., 0]).max() > 0.1


@pytest.mark.parametrize('network', NETWORKS)
@pytest.mark.parametrize('q', [None, 0.4])
def test_multiscale_loss(network, q, golden):
    from network.losses import MultiscaleEpe, EpeLossWithMask
    from network.layers import Upsample
    gold = golden(network, 'loss')
    assert list(gold['strides']) == list(STRIDES)
    loss_fn = MultiscaleEpe(STRIDES, [float(w) for w in gold['weights']], q=q)
    loss_fn.hybridize()
    preds = [mx.nd.array(gold['pred_flow_s%d' % s]) for s in STRIDES]
    label, mask = mx.nd.array(gold['label_yx']), mx.nd.array(gold['mask'])
    suffix = 'none' if q is None else '0p4'
    assert_close(loss_fn(label, mask, *preds).asnumpy(), gold['loss_q_' + suffix],
                 what='loss q=%s' % q, **SCALAR_TOL)
    terms = np.stack([t.asnumpy() for t in loss_fn.terms(mx.nd, label, mask, *preds)])
    assert_close(terms, gold['loss_terms_q_' + suffix], what='loss terms', **SCALAR_TOL)
    if q is None:
        train_epe = EpeLossWithMask()(Upsample(4)(preds[-1]), label, mask)
        assert_close(train_epe.asnumpy(), gold['train_epe'], what='train_epe', **SCALAR_TOL)


def validate(pipe, img1s, img2s, labels, masks=None, batch_size=1, return_type='epe'):
    """The original's validate(): the mean over samples of the per-sample EPE or KITTI Fl."""
    from engine.evaluate import per_sample_metrics
    values = per_sample_metrics(pipe, img1s, img2s, labels, masks, batch_size,
                                metrics=(return_type,))
    return float(np.mean(values[return_type]))


@pytest.mark.slow
@pytest.mark.parametrize('network', NETWORKS)
def test_validation_metrics(network, pipelines, golden):
    pipe, inputs, gold = pipelines(network), golden(network, 'inputs'), golden(network, 'validate')
    a, b = inputs['img1_rgb_uint8'], inputs['img2_rgb_uint8']
    labels, masks = list(gold['label_xy']), list(gold['mask_uint8'])
    epe = validate(pipe, [a, b], [b, a], labels, masks, batch_size=1)
    assert_close(epe, gold['epe'], what='epe', **SCALAR_TOL)
    assert_close(validate(pipe, [a, b], [b, a], labels, masks, batch_size=2), gold['epe_bs2'],
                 what='epe batch 2', **SCALAR_TOL)
    assert_close(validate(pipe, [a], [b], labels[:1], masks[:1]), gold['epe_sample0'],
                 what='epe sample 0', **SCALAR_TOL)
    fl = validate(pipe, [a, b], [b, a], labels, masks, return_type='kitti')
    assert_close(fl, gold['kitti_fl'], 1e-6, 0, 'kitti_fl')
    # The golden labels make 256 pixels of every valid row outliers; sample 0's valid rows hold
    # 512 pixels, sample 1's 462.
    assert abs(fl - (0.5 + 256 / 462) / 2) < 1e-6


def test_validation_without_mask_averages(pipelines, golden):
    """Fixed bug: without a mask the EPE is the per-pixel mean, not the original's per-image sum."""
    pipe, inputs, gold = pipelines('MaskFlownet_S'), golden(None, 'inputs'), golden('MaskFlownet_S', 'validate')
    a, b = inputs['img1_rgb_uint8'], inputs['img2_rgb_uint8']
    epe = validate(pipe, [a, b], [b, a], list(gold['label_xy']), None)
    assert_close(epe, gold['epe_mask_none'] / (218 * 512), what='epe without mask', **SCALAR_TOL)


@pytest.mark.parametrize('q', [None, 0.4])
def test_pipeline_loss_follows_the_configs_q_and_mw(q, golden):
    """The training loss of a Pipeline built from a config uses its optimizer.q and network.mw.

    Expected values: the golden per-level terms of the original, reweighted by hand."""
    from network.pipeline import Pipeline
    gold = golden('MaskFlownet_S', 'loss')
    mw = [0.5, 0.25, 0.125, 0.0625, 1.0]
    config = {'network': {'class': 'MaskFlownet_S', 'mw': mw}}
    if q is not None:
        config['optimizer'] = {'q': q}
    pipe = Pipeline(Config(config))
    preds = [mx.nd.array(gold['pred_flow_s%d' % s]) for s in STRIDES]
    label, mask = mx.nd.array(gold['label_yx']), mx.nd.array(gold['mask'])
    suffix = 'none' if q is None else '0p4'
    unweighted = gold['loss_terms_q_' + suffix] / np.asarray(gold['weights'], np.float64)[:, None]
    expected = (unweighted * np.asarray(mw)[:, None]).sum(axis=0)
    assert_close(pipe.loss(preds, label, mask).asnumpy(), expected, what='pipeline loss',
                 **SCALAR_TOL)
