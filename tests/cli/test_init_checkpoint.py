"""python -m network.init_checkpoint: an untrained checkpoint for a network config."""
import mxnet as mx
import pytest

from common.config import Config
from network.pipeline import Pipeline
from tests.helpers import manifest


@pytest.mark.slow
def test_init_checkpoint_tool_writes_a_loadable_untrained_checkpoint(tmp_path, capsys):
    from network import init_checkpoint
    out = tmp_path / 'w' / 'untrained_0.params'
    assert init_checkpoint.main(['MaskFlownet_S.yaml', str(out), '--seed', '3']) == 0
    assert sorted(mx.nd.load(str(out))) == sorted(name for name, _ in manifest('MaskFlownet_S'))
    Pipeline(Config({'network': {'class': 'MaskFlownet_S'}})).load(out)
    assert init_checkpoint.main(['NoSuchNet', str(tmp_path / 'x.params')]) == 2
    assert 'NoSuchNet' in capsys.readouterr().err


@pytest.mark.parametrize('out, fragment', [
    ('untrained.txt', 'untrained.txt: a checkpoint is a .params file'),
    ('folder.params', 'folder.params: is a directory'),
    ('fifo.params', 'fifo.params: not a regular file'),
    ('config.params', 'config.params: is the input'),
])
def test_a_bad_output_is_refused_before_the_network_is_built(tmp_path, monkeypatch, capsys, out,
                                                              fragment):
    """It overwrote its own config, and replaced FIFOs and devices with regular files."""
    import os
    import network.pipeline
    from network import init_checkpoint
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'folder.params').mkdir()
    os.mkfifo(tmp_path / 'fifo.params')
    (tmp_path / 'config.params').write_text('network:\n  class: MaskFlownet_S\n')
    monkeypatch.setattr(network.pipeline.Pipeline, '__init__',
                        lambda *a, **k: pytest.fail('the network was built first'))
    config = 'config.params' if out == 'config.params' else 'MaskFlownet_S.yaml'
    assert init_checkpoint.main([config, out]) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: %s' % fragment) and err.count('\n') == 1, err
    assert (tmp_path / 'config.params').read_text().startswith('network:')
    assert init_checkpoint.main(['MaskFlownet_S.yaml', 'x.params', '--seed', '-1']) == 2
    assert '--seed -1: must be from 0' in capsys.readouterr().err
