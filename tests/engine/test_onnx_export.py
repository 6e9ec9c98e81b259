"""engine/onnx_export.py: the exported model (names, documentation, metadata, weights as
constants, opset), the reshape rewrite, the onnx.mapping shim, and the export command."""
import json
import sys

import mxnet as mx
import numpy as np
import onnx
import pytest

from tests.helpers import assert_close
from engine import onnx_export
from engine.onnx_export import (EXPORT_OPSET, concrete_symbol, export_metadata, export_onnx,
                                file_sha256, import_onnx)

pytestmark = pytest.mark.slow   # every test here exports a network or runs a command

FLOW_TOL = dict(atol=1e-3, rtol=1e-5)


@pytest.fixture(scope='module')
def s_model(tmp_path_factory, pipelines, golden_checkpoint):
    path = tmp_path_factory.mktemp('onnx') / 'MaskFlownet_S.onnx'
    pipe, checkpoint = pipelines('MaskFlownet_S'), golden_checkpoint('MaskFlownet_S')
    metadata = export_metadata(pipe, checkpoint, file_sha256(checkpoint), (60, 100), (64, 128))
    export_onnx(pipe, (60, 100), None, str(path), metadata)
    return path, metadata


def test_the_model_is_checked_named_and_documented(s_model):
    model = onnx.load(str(s_model[0]))
    onnx.checker.check_model(model, full_check=True)
    assert [o.version for o in model.opset_import if o.domain in ('', 'ai.onnx')] == [EXPORT_OPSET]
    graph = model.graph

    def shape(value):
        return [d.dim_value for d in value.type.tensor_type.shape.dim]

    # The weights are initializers only: onnxruntime treats them as constants.
    assert [i.name for i in graph.input] == ['image_1', 'image_2']
    assert [o.name for o in graph.output] == ['flow', 'occ_mask']
    assert all(shape(i) == [1, 60, 100, 3] for i in graph.input)
    assert all(i.type.tensor_type.elem_type == onnx.TensorProto.UINT8 for i in graph.input)
    assert shape(graph.output[0]) == [1, 60, 100, 2] and shape(graph.output[1]) == [1, 60, 100, 1]
    assert all(v.doc_string for v in list(graph.input) + list(graph.output))
    assert sum(i.name.endswith('_weight') for i in graph.initializer) > 50
    read = {name for node in graph.node for name in node.input}
    assert all(i.name in read for i in graph.initializer)
    # centring, the resize to 64 x 128 and back, the flip: inside the graph
    ops = {node.op_type for node in graph.node}
    assert {'Cast', 'ReduceMean', 'Resize', 'Conv', 'MatMul'} <= ops


def test_the_metadata_records_the_checkpoint_and_the_config(s_model, golden_checkpoint):
    path, metadata = s_model
    model = onnx.load(str(path))
    found = {p.key: p.value for p in model.metadata_props}
    checkpoint = golden_checkpoint('MaskFlownet_S')
    assert found['maskflownet.checkpoint_sha256'] == file_sha256(checkpoint) == \
        metadata['checkpoint_sha256']
    assert json.loads(found['maskflownet.network_config'])['class'] == 'MaskFlownet_S'
    assert found['maskflownet.network_class'] == 'MaskFlownet_S'
    assert found['maskflownet.image_size'] == '60,100'
    assert found['maskflownet.network_size'] == '64,128'
    assert len(found['maskflownet.weights_sha256']) == 64


def test_the_model_runs_as_the_pipeline_does(s_model, pipelines, golden):
    ort = pytest.importorskip('onnxruntime')
    session = ort.InferenceSession(str(s_model[0]), providers=['CPUExecutionProvider'])
    inputs = golden(None, 'inputs')
    a, b = inputs['img1_rgb_uint8'][40:100, 200:300], inputs['img2_rgb_uint8'][40:100, 200:300]
    flow, occ_mask = session.run(None, {'image_1': a[None], 'image_2': b[None]})
    expected, expected_mask, _ = pipelines('MaskFlownet_S').predict_pair(a, b)
    assert_close(flow[0], expected, what='flow', **FLOW_TOL)
    assert_close(occ_mask[0], expected_mask, what='occ_mask', atol=1e-4, rtol=1e-5)


def test_reshape_codes_become_concrete_shapes():
    data = mx.sym.var('data')
    merged = mx.sym.reshape(data, (-3, -2))
    out = mx.sym.reshape_like(mx.sym.reshape(merged, (0, -4, 2, -1, 0)), data)
    concrete = concrete_symbol(out, {'data': (2, 3, 4, 5)})
    nodes = [n for n in json.loads(concrete.tojson())['nodes'] if n['op'] == 'Reshape']
    assert [n['attrs']['shape'] for n in nodes] == ['(6, 4, 5)', '(6, 2, 2, 5)', '(2, 3, 4, 5)']
    x = mx.nd.array(np.arange(120).reshape(2, 3, 4, 5))
    assert (concrete.eval(data=x)[0].asnumpy() == out.eval(data=x)[0].asnumpy()).all()


def test_onnx_mapping_is_put_back_for_the_exporter():
    onnx_module = import_onnx()
    assert onnx_module.mapping.NP_TYPE_TO_TENSOR_TYPE[np.dtype('float32')] == \
        onnx.TensorProto.FLOAT
    assert onnx_module.mapping.TENSOR_TYPE_TO_NP_TYPE[onnx.TensorProto.UINT8] == np.dtype('uint8')


def test_a_missing_onnx_package_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, 'onnx', None)
    with pytest.raises(onnx_export.UserError, match='needs the onnx package'):
        import_onnx()


def test_a_failing_exporter_is_one_line(monkeypatch, pipelines, tmp_path):
    from mxnet.onnx.mx2onnx._export_onnx import MXNetGraph

    def broken(*args, **kwargs):
        raise AttributeError('No conversion function registered for op type Foo yet.\nmore')
    monkeypatch.setattr(MXNetGraph, 'create_onnx_graph_proto', broken)
    with pytest.raises(onnx_export.UserError) as raised:
        export_onnx(pipelines('MaskFlownet_S'), (64, 64), None, str(tmp_path / 'x.onnx'), {})
    assert str(raised.value) == ('exporting MaskFlownet_S for 64x64 images to ONNX failed '
                                 '(AttributeError: No conversion function registered for op '
                                 'type Foo yet.)')


# --- python -m engine.onnx_export ----------------------------------------------------------

def test_the_export_command_writes_a_model(tmp_path, golden_checkpoint, capsys):
    out = tmp_path / 'model.onnx'
    assert onnx_export.main(['MaskFlownet_S.yaml', str(out), '-c',
                             str(golden_checkpoint('MaskFlownet_S')), '--size', '64,100',
                             '--resize', '64,64']) == 0
    assert capsys.readouterr().out.startswith(
        '%s: MaskFlownet_S for 100x64 images (network 64x64), ONNX opset 16' % out)
    model = onnx.load(str(out))
    found = {p.key: p.value for p in model.metadata_props}
    assert found['maskflownet.network_size'] == '64,64'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['model.onnx']


@pytest.mark.parametrize('args, fragment', [
    (['--size', '0,64'], '--size 0,64: expected the image size as H,W'),
    (['--size', 'big'], '--size big: expected the image size as H,W'),
    (['--size', '64,40000'], '--size 64,40000: 40000x64 is too large'),
    (['--size', '64,64', '--resize', '60,64'], '--resize 60,64: expected H,W'),
])
def test_the_export_command_refuses_unsupported_sizes(tmp_path, golden_checkpoint, capsys, args,
                                                      fragment):
    out = tmp_path / 'model.onnx'
    assert onnx_export.main(['MaskFlownet_S.yaml', str(out), '-c',
                             str(golden_checkpoint('MaskFlownet_S'))] + args) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ' + fragment) and err.count('\n') == 1, err
    assert list(tmp_path.iterdir()) == []


def test_a_failed_export_command_writes_nothing(tmp_path, golden_checkpoint, capsys, break_export):
    break_export(RuntimeError('translation failed'))
    out = tmp_path / 'model.onnx'
    assert onnx_export.main(['MaskFlownet_S.yaml', str(out), '-c',
                             str(golden_checkpoint('MaskFlownet_S')), '--size', '64,64']) == 2
    err = capsys.readouterr().err
    assert err == ('error: exporting MaskFlownet_S for 64x64 images to ONNX failed '
                   '(RuntimeError: translation failed)\n')
    assert list(tmp_path.iterdir()) == []


def test_running_out_of_memory_while_exporting_says_what_to_reduce(tmp_path, golden_checkpoint,
                                                                   capsys, break_export):
    """It was wrapped as 'exporting ... failed (MemoryError: ...)', without the advice."""
    break_export(MemoryError())
    out = tmp_path / 'model.onnx'
    assert onnx_export.main(['MaskFlownet_S.yaml', str(out), '-c',
                             str(golden_checkpoint('MaskFlownet_S')), '--size', '64,64']) == 2
    assert capsys.readouterr().err == ('error: out of memory while exporting for network size '
                                       '64x64; reduce --size or --resize\n')
    assert list(tmp_path.iterdir()) == []


def test_a_usage_mistake_is_one_line(capsys):
    with pytest.raises(SystemExit) as exited:
        onnx_export.main(['MaskFlownet_S.yaml', 'out.onnx', '--size', '64,64'])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err == ('error: the following arguments are required: -c/--checkpoint '
                   '(python -m engine.onnx_export --help: usage)\n')
