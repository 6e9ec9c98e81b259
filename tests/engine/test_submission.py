"""engine/submission.py: --predict's outputs (the rest runs through main.py in tests/cli)."""
import pytest

from tests.helpers import SAMPLE, FakePipe


def test_an_interrupt_between_a_flow_and_its_mask_leaves_neither(tmp_path, monkeypatch):
    from engine import submission
    from reader import flowio, sintel
    samples = sintel.list_samples(SAMPLE / 'MPI-Sintel-complete', 'training')[:1]
    flow_path = tmp_path / 'out' / 'frame.flo'

    def interrupted(path, image):
        raise KeyboardInterrupt
    monkeypatch.setattr(flowio, 'write_image', interrupted)
    with pytest.raises(KeyboardInterrupt):
        submission._predict_to_files(FakePipe(), [(samples[0], str(flow_path))],
                                     flowio.write_flo, 1, None, True, 'test')
    assert not flow_path.parent.exists() or list(flow_path.parent.iterdir()) == []


def test_the_settings_record_keeps_the_network_section_as_the_file_wrote_it(monkeypatch):
    """Records written before configs were checked at load hold the file's own network section;
    with the schema's defaults in it, every such folder would be refused on a restart."""
    from common.config import load_config
    from engine import settings

    class Loaded:
        network_class = 'MaskFlownet_S'
        config = load_config('MaskFlownet_S.yaml', 'network')
        network = None
    monkeypatch.setattr(settings, 'weights_sha256', lambda network: 'sha')
    assert Loaded.config.network.upfeat_ch.value == [16, 16, 16, 16]   # filled in by the schema
    assert settings.network_identity(Loaded) == {
        'network_class': 'MaskFlownet_S', 'network_config': {'class': 'MaskFlownet_S'},
        'weights_sha256': 'sha'}
