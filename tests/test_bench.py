"""The benchmarks measure what training really runs: the chairs config's sizes, not defaults."""
import importlib.util
from pathlib import Path

from common.config import load_config
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


def test_the_gemm_reference_names_the_blas_kernel_and_picks_one_for_the_cpu(monkeypatch):
    compare = load_bench('compare')
    # numpy's own OpenBLAS reports the kernel family it runs (e.g. 'Prescott', 'Haswell').
    assert isinstance(compare.blas_core(), str) and compare.blas_core()
    import common.devices
    flags = {'avx2', 'avx512f', 'avx512bw', 'avx512vl', 'avx512dq'}
    for cpu, want in ((flags, 'SkylakeX'), ({'avx2', 'avx512f'}, 'Haswell'), ({'sse2'}, None)):
        monkeypatch.setattr(common.devices, 'cpu_flags', lambda cpu=cpu: frozenset(cpu))
        assert compare.suitable_blas_core() == want
