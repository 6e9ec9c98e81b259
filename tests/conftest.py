"""Shared fixtures: golden files of the original implementation and checkpoints built from them."""
import json
import os
import zlib
from pathlib import Path

# Single-threaded like the golden run: results are then reproducible bit for bit.
os.environ.setdefault('OMP_NUM_THREADS', '1')
# One process runs every test, at many input sizes: oneDNN's primitive cache (unbounded by
# default) would otherwise keep a primitive and its buffers for every shape ever seen.
os.environ.setdefault('MXNET_MKLDNN_CACHE_NUM', '16')

import numpy as np
import mxnet as mx
import pytest


DATA = Path(__file__).resolve().parent / 'data'
PARITY = DATA / 'parity'
NETWORKS = ('MaskFlownet_S', 'MaskFlownet')


def manifest(network):
    with open(PARITY / ('%s.manifest.json' % network)) as f:
        return [(entry['name'], tuple(entry['shape'])) for entry in json.load(f)]


def deterministic_weight(name, shape):
    """The weights the golden files were computed with: a normal draw seeded by the crc32 of
    the parameter name, scaled by sqrt(2 / fan-in) (He) for tensors of 2 or more dimensions and
    by 0.01 for the others."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    scale = np.sqrt(2.0 / np.prod(shape[1:])) if len(shape) >= 2 else 0.01
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def write_deterministic_checkpoint(network, path):
    mx.nd.save(str(path), {name: mx.nd.array(deterministic_weight(name, shape))
                           for name, shape in manifest(network)})
    return path


@pytest.fixture(scope='session')
def golden_checkpoint(tmp_path_factory):
    """network name -> path of the deterministic checkpoint built from its manifest."""
    folder = tmp_path_factory.mktemp('checkpoints')
    cache = {}

    def get(network):
        if network not in cache:
            cache[network] = write_deterministic_checkpoint(network, folder / ('%s.params' % network))
        return cache[network]
    return get


@pytest.fixture(scope='session')
def golden():
    """golden('MaskFlownet_S', 'predict') -> the dict of arrays in that golden file."""
    def load(network, kind):
        name = 'inputs.npz' if kind == 'inputs' else '%s.%s.npz' % (network, kind)
        with np.load(PARITY / name) as data:
            return {k: data[k] for k in data.files}
    return load


@pytest.fixture(scope='session')
def pipelines(golden_checkpoint):
    """network name -> a CPU Pipeline with the deterministic golden weights loaded (cached)."""
    from common.config import Config
    from network.pipeline import Pipeline
    cache = {}

    def get(network):
        if network not in cache:
            # Cached for the whole session: its graphs do not keep their memory between calls.
            pipe = Pipeline(Config({'network': {'class': network}}), keep_graph_memory=False)
            pipe.load(golden_checkpoint(network))
            cache[network] = pipe
        return cache[network]
    return get


def assert_close(actual, expected, atol, rtol, what):
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, '%s: shape %s, golden %s' % (what, actual.shape, expected.shape)
    excess = np.abs(actual - expected) - (atol + rtol * np.abs(expected))
    worst = np.unravel_index(np.argmax(excess), excess.shape) if excess.size else ()
    assert excess.size == 0 or excess.max() <= 0, (
        '%s: max |diff| %.3g at %s exceeds atol %g + rtol %g' %
        (what, np.abs(actual - expected).max(), worst, atol, rtol))


def run_predict_cli(args):
    """predict_new_data.py's main() in this process; returns its exit status."""
    import predict_new_data
    return predict_new_data.main([str(a) for a in args])


def expect_cli_error(capsys, args, *fragments):
    """The CLI exits 2 with exactly one stderr line starting 'error: ' that holds fragments."""
    assert run_predict_cli(args) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and err.count('\n') == 1, err
    for fragment in fragments:
        assert str(fragment) in err
    return err
