"""Pipeline: the inference graph beside the training graph (network/pipeline.py)."""
import json

import mxnet as mx
import numpy as np
import pytest

from common.devices import cpu_flags
from network import layers, pipeline
from common.config import Config
from network.pipeline import Pipeline
from tests.helpers import NETWORKS, NETWORKS_FULL_SLOW


def test_inference_channel_padding_is_dropped_only_where_onednn_has_its_brgemm_kernels():
    avx512 = {'avx512f', 'avx512bw', 'avx512vl', 'avx512dq'} <= cpu_flags()
    assert layers.INFERENCE_CHANNEL_ALIGN == (1 if avx512 else layers.CHANNEL_ALIGN)


@pytest.mark.parametrize('network', NETWORKS_FULL_SLOW)
def test_the_inference_graph_shares_the_parameters_and_computes_what_training_computes(
        network, monkeypatch):
    # Unpadded inference on every machine, whatever its CPU: the graphs then differ.
    monkeypatch.setattr(pipeline, 'INFERENCE_CHANNEL_ALIGN', 1)
    mx.random.seed(3)
    pipe = Pipeline(Config({'network': {'class': network}}))
    train, infer = pipe.network, pipe.inference_network
    assert infer is not train
    assert set(infer.decoder_padding.values()) == {0} and any(train.decoder_padding.values())
    shared = list(train.collect_params().values())
    assert [id(p) for p in infer.collect_params().values()] == [id(p) for p in shared]

    rng = np.random.default_rng(0)
    first = None
    for shape, param in (((1, 3, 128, 192), shared[0]), ((1, 3, 192, 128), shared[1])):
        img1, img2 = (mx.nd.array(rng.uniform(-0.5, 0.5, shape)) for _ in range(2))
        # Parameters loaded into (or trained in) the one are the other's: change one in place,
        # before the inference graph's first call and after it has a plan.
        param.set_data(param.data() * 1.5)
        flows_t, masks_t, _ = train(img1, img2)
        flows_i, masks_i, _ = infer(img1, img2)
        for a, b in zip(list(flows_t) + list(masks_t), list(flows_i) + list(masks_i)):
            a, b = a.asnumpy(), b.asnumpy()
            np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4 * np.abs(a).max())
        if first is None:   # the inference graph keeps its memory: outputs must not be reused
            first, first_values = flows_i[-1], flows_i[-1].asnumpy()
    np.testing.assert_array_equal(first.asnumpy(), first_values)


def test_released_graph_memory_is_planned_anew_with_the_same_results():
    pipe = Pipeline(Config({'network': {'class': 'MaskFlownet_S'}}))
    img1, img2 = (mx.nd.array(np.random.default_rng(k).uniform(0, 1, (1, 3, 128, 192)))
                  for k in (1, 2))
    before = pipe.run_network(img1, img2)[0][-1].asnumpy()
    before_training = pipe.network(img1, img2)[0][-1].asnumpy()
    for network in (pipe.network, pipe.inference_network):   # holding a plan and its memory
        flags = dict(network._flags)
        assert network._cached_op is not None and flags['static_alloc'] and flags['static_shape']
    pipe.release_graph_memory()
    assert pipe.network._cached_op is None and pipe.inference_network._cached_op is None
    np.testing.assert_array_equal(pipe.run_network(img1, img2)[0][-1].asnumpy(), before)
    np.testing.assert_array_equal(pipe.network(img1, img2)[0][-1].asnumpy(), before_training)


def concat_axes(network):
    """The ``dim`` of every Concat in the network's graph."""
    def symbols(out):
        return [s for o in out for s in symbols(o)] if isinstance(out, (list, tuple)) else [out]
    graph = mx.sym.Group(symbols(network(mx.sym.var('img1'), mx.sym.var('img2'))))
    return [int(node['attrs'].get('dim', 1)) for node in json.loads(graph.tojson())['nodes']
            if node['op'] == 'Concat']


@pytest.mark.parametrize('network', NETWORKS)
def test_only_the_inference_graph_concatenates_with_onednn(network):
    # MXNet hands a Concat to oneDNN when its dim is positive, and oneDNN's backward pass leaks
    # (layers.concat): the training graph must have none; the inference graph, which never
    # runs backward, keeps oneDNN's faster kernel for its channel concatenations.
    pipe = Pipeline(Config({'network': {'class': network}}))
    training, inference = concat_axes(pipe.network), concat_axes(pipe.inference_network)
    assert training and max(training) < 0
    assert inference.count(1) >= 60


def named_blocks(block, prefix=''):
    """(attribute path, block) of every block under ``block``."""
    for name, child in block._children.items():
        yield prefix + name, child
        yield from named_blocks(child, prefix + name + '.')


@pytest.mark.parametrize('network', NETWORKS)
def test_only_the_inference_graph_predicts_by_taps(network):
    # The 1- and 2-channel predictions by taps (layers._conv3x3_by_taps) compute the plain
    # convolution's numbers faster where no backward pass is needed; training keeps MXNet's.
    pipe = Pipeline(Config({'network': {'class': network}}))
    for graph, expected in ((pipe.network, False), (pipe.inference_network, True)):
        predictions = [block for name, block in named_blocks(graph) if name.rsplit('.', 1)[-1]
                       .startswith(('pred_flow', 'pred_mask', 'dc_conv7'))]
        assert len(predictions) == {'MaskFlownet_S': 10, 'MaskFlownet': 16}[network]
        assert all(block._by_taps == expected for block in predictions)


@pytest.mark.slow
def test_the_warped_image_is_computed_only_when_asked(s_pipe):
    frames = [np.full((64, 128, 3), v, np.uint8) for v in (90, 110)]
    flow, occ, warped = s_pipe.predict_pair(*frames)
    assert warped is None and flow.shape == (64, 128, 2) and occ.shape == (64, 128, 1)
    flow2, _, warped = s_pipe.predict_pair(*frames, warped=True)
    assert warped.shape == (64, 128, 3)
    np.testing.assert_array_equal(flow, flow2)
