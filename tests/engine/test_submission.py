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


class IdentifiedPipe(FakePipe):
    network_class = 'MaskFlownet_S'
    config = type('Config', (), {'raw': {'network': {'class': 'MaskFlownet_S'}}})()

    def weights_sha256(self):
        return 'sha'


def test_the_settings_record_is_written_with_the_first_flow(tmp_path):
    """It was written before the first prediction: a --predict stopped then left a record in a
    folder of no flows, which refused every later run with other settings."""
    from engine import submission
    from reader import flowio, sintel
    samples = sintel.list_samples(SAMPLE / 'MPI-Sintel-complete', 'training')[:1]
    folder = tmp_path / 'out_sintel'
    task = submission._Run('sintel', str(folder), [(samples[0], str(folder / 'frame.flo'))],
                           flowio.write_flo, (448, 1024))

    class Interrupted(IdentifiedPipe):
        def predict(self, *args, **kwargs):
            raise KeyboardInterrupt
            yield
    with pytest.raises(KeyboardInterrupt):
        submission.predict_submissions(Interrupted(), str(tmp_path / 'out'), tasks=[task])
    assert list(folder.iterdir()) == []
    assert submission.predict_submissions(IdentifiedPipe(), str(tmp_path / 'out'),
                                          tasks=[task]) == [('sintel', 1, 0)]
    assert sorted(p.name for p in folder.iterdir()) == ['frame.flo', 'predict_settings.json']
