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
