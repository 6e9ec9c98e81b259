"""Pipeline: the inference graph beside the training graph (network/pipeline.py)."""
import mxnet as mx
import numpy as np
import pytest

from common.devices import cpu_flags
from network import layers, pipeline
from network.config import Config
from network.pipeline import Pipeline

from conftest import NETWORKS


def test_inference_channel_padding_is_dropped_only_where_onednn_has_its_brgemm_kernels():
    avx512 = {'avx512f', 'avx512bw', 'avx512vl', 'avx512dq'} <= cpu_flags()
    assert layers.INFERENCE_CHANNEL_ALIGN == (1 if avx512 else layers.CHANNEL_ALIGN)


@pytest.mark.parametrize('network', NETWORKS)
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
    img1, img2 = (mx.nd.array(rng.uniform(-0.5, 0.5, (1, 3, 128, 192))) for _ in range(2))
    # Parameters loaded into (or trained in) the one are the other's: change one in place.
    shared[0].set_data(shared[0].data() * 1.5)
    flows_t, masks_t, _ = train(img1, img2)
    flows_i, masks_i, _ = infer(img1, img2)
    for a, b in zip(list(flows_t) + list(masks_t), list(flows_i) + list(masks_i)):
        a, b = a.asnumpy(), b.asnumpy()
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4 * np.abs(a).max())
    assert pipe.run_network(img1 + 0.5, img2 + 0.5)[0][-1].shape == flows_t[-1].shape
