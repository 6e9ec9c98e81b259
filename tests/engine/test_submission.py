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
