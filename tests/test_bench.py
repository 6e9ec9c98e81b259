"""The benchmarks measure what training really runs: the chairs config's sizes, not defaults."""
import importlib.util
from pathlib import Path

from network.config import load_config
from reader.mixes import training_data

REPO = Path(__file__).resolve().parent.parent


def load_bench(name):
    spec = importlib.util.spec_from_file_location(name, REPO / 'bench' / (name + '.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_training_benchmarks_train_at_the_chairs_config_size(monkeypatch):
    # bench_training once built its dataset config by hand and trained at the crop size,
    # 384 x 512, instead of chairs.yaml's 320 x 448: 1.37 times the pixels of a real step.
    monkeypatch.setenv('MASKFLOWNET_CHAIRS', str(REPO / 'sample_data' / 'FlyingChairs_release'))
    data = training_data(load_bench('bench_training').chairs_config(), 'MaskFlownet_S')
    assert (tuple(data.orig_shape), tuple(data.target_shape)) == ((384, 512), (320, 448))
    compare = load_bench('compare')
    chairs = load_config('chairs.yaml')
    assert tuple(compare.TRAIN_TARGET) == tuple(chairs.target_shape.get())
    assert tuple(compare.TRAIN_CROP) == tuple(data.orig_shape)
