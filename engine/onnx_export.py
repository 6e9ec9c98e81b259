"""Export MaskFlownet-S or MaskFlownet, with its pre- and post-processing, to a self-contained
ONNX model for one image size (docs/onnx.md):

    python -m engine.onnx_export CONFIG OUT.onnx -c CHECKPOINT --size H,W [--resize H,W]

The graph is ``network.portable.PortablePrediction`` (what is inside it is listed there), traced
by MXNet and translated by MXNet 1.9.1's own exporter (``mxnet.onnx``), with four adaptations
made here, none of which changes a number:

* the exporter translates to ONNX opsets 12 and 13 and takes the newest opset that the
  installed onnx package knows, so the translation is pinned to 13, and the model declares
  opset 16, the first with GridSample (no operator it uses changed meaning from 13 to 16);
* MXNet's reshape codes (0, -1, -2, -3, -4) and ``reshape_like`` become concrete shapes of
  the export size (the exporter translates only a few cases of the codes);
* MXNet's ``GridGenerator`` (warp) and ``BilinearSampler``, the cascade's warp of image 2, get
  translations, registered with the exporter's own registry, to arithmetic and ONNX GridSample;
* the weights are initializers only, not graph inputs as well, so that onnxruntime can treat
  them as constants (fold, pre-pack).

onnx 1.16 removed ``onnx.mapping``, which the exporter imports: ``import_onnx`` puts back the
two tables it uses.
"""
import contextlib
import hashlib
import io
import json
import os
import sys
import types

import numpy as np

from common.cli import ArgumentParser, add_checkpoint_options, run
from common.devices import prepare_process
from common.environment import check_environment
from common.errors import UserError
from common.options import check_side

from .failures import is_out_of_memory, memory_guard, onednn_failed

EXPORT_OPSET = 16          # the model's opset: GridSample is new in 16
TRANSLATION_OPSET = 13     # the newest opset MXNet 1.9.1's exporter translates to
# Bumped whenever the exported graph changes: cached models of another format are rebuilt.
EXPORT_FORMAT = 2
METADATA_PREFIX = 'maskflownet.'

_registered = False


def import_onnx():
    """The onnx package, with the ``onnx.mapping`` tables MXNet's exporter reads; a UserError
    (one line) if it is not installed."""
    try:
        import onnx
    except ImportError:
        raise UserError('exporting to ONNX needs the onnx package, which is not installed: '
                        'pip install -r requirements.txt (see docs/onnx.md)') from None
    if 'onnx.mapping' not in sys.modules and not hasattr(onnx, 'mapping'):
        mapping = types.ModuleType('onnx.mapping')
        types_ = [t for name, t in onnx.TensorProto.DataType.items()
                  if name in ('FLOAT', 'DOUBLE', 'FLOAT16', 'INT8', 'INT16', 'INT32', 'INT64',
                              'UINT8', 'UINT16', 'UINT32', 'UINT64', 'BOOL')]
        mapping.TENSOR_TYPE_TO_NP_TYPE = {t: np.dtype(onnx.helper.tensor_dtype_to_np_dtype(t))
                                          for t in types_}
        mapping.NP_TYPE_TO_TENSOR_TYPE = {d: t for t, d in mapping.TENSOR_TYPE_TO_NP_TYPE.items()}
        sys.modules['onnx.mapping'] = onnx.mapping = mapping
    return onnx


def _register_translations():
    """GridGenerator (warp) and BilinearSampler for the exporter, once per process."""
    global _registered
    if _registered:
        return
    import_onnx()
    from onnx.helper import make_node
    from mxnet.onnx.mx2onnx._export_onnx import MXNetGraph
    from mxnet.onnx.mx2onnx._op_translations._op_translations_opset12 import get_inputs

    @MXNetGraph.register('GridGenerator', TRANSLATION_OPSET)
    def grid_generator(node, **kwargs):
        """warp: the sampling grid of a pixel flow (x, y), normalised as BilinearSampler reads
        it: (p + flow) / ((size - 1) / 2) - 1. ``target_shape`` holds the flow's (H, W): MXNet
        ignores it for warp, concrete_symbol writes it for this translation."""
        name, (flow,), attrs = get_inputs(node, kwargs)
        if attrs.get('transform_type') != 'warp':
            raise NotImplementedError('GridGenerator %s' % attrs.get('transform_type'))
        height, width = json.loads(attrs['target_shape'].replace('(', '[').replace(')', ']'))
        rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
        base = np.stack([cols, rows])[None]                               # 1, 2, H, W
        half = np.array([(width - 1) / 2, (height - 1) / 2], np.float32).reshape(1, 2, 1, 1)
        _constant(kwargs, name + '_base', base)
        _constant(kwargs, name + '_half', half)
        _constant(kwargs, name + '_one', np.ones((), np.float32))
        return [make_node('Add', [flow, name + '_base'], [name + '_pos']),
                make_node('Div', [name + '_pos', name + '_half'], [name + '_scaled']),
                make_node('Sub', [name + '_scaled', name + '_one'], [name], name=name)]

    @MXNetGraph.register('BilinearSampler', TRANSLATION_OPSET)
    def bilinear_sampler(node, **kwargs):
        """ONNX GridSample: bilinear, zeros outside, corners aligned as MXNet's sampler reads
        (-1 and 1 are the centres of the first and last pixels)."""
        name, (data, grid), _ = get_inputs(node, kwargs)
        return [make_node('Transpose', [grid], [name + '_grid'], perm=[0, 2, 3, 1]),
                make_node('GridSample', [data, name + '_grid'], [name], name=name,
                          mode='bilinear', padding_mode='zeros', align_corners=1)]

    _registered = True


def _constant(kwargs, name, array):
    from onnx import numpy_helper
    kwargs['initializer'].append(numpy_helper.from_array(array, name))


def concrete_symbol(sym, input_shapes):
    """``sym`` with every Reshape and reshape_like given the concrete shape it has for
    ``input_shapes`` ({name: shape}), and GridGenerator its (H, W) (see _register_translations)."""
    import mxnet as mx
    graph = json.loads(sym.tojson())
    # A block called twice (the pyramid on each image) names its nodes twice: unique names first.
    seen = set()
    for index, node in enumerate(graph['nodes']):
        if node['op'] != 'null' and node['name'] in seen:
            node['name'] = '%s_%d' % (node['name'], index)
        seen.add(node['name'])
    internals = mx.sym.load_json(json.dumps(graph)).get_internals()
    _, shapes, _ = internals.infer_shape(**input_shapes)
    shapes = dict(zip(internals.list_outputs(), shapes))
    for node in graph['nodes']:
        op = node['op']
        if op in ('Reshape', 'reshape_like'):
            node['op'] = 'Reshape'
            node['attrs'] = {'shape': str(tuple(shapes[node['name'] + '_output']))}
            node['inputs'] = node['inputs'][:1]
        elif op == 'GridGenerator':
            node['attrs']['target_shape'] = str(tuple(shapes[node['name'] + '_output'][2:]))
    return mx.sym.load_json(json.dumps(graph))


def export_onnx(pipe, image_size, resize, path, metadata):
    """Write ``pipe``'s network (a Pipeline with its weights loaded) as an ONNX model of
    ``network.portable.PortablePrediction`` for images of ``image_size`` (H, W) at network size
    ``resize`` (None: the next multiples of 64) to ``path``, with ``metadata`` ({key: text})
    under ``maskflownet.*``; the model is checked with onnx.checker first."""
    onnx = import_onnx()
    try:
        _export(onnx, pipe, image_size, resize, path, metadata)
    except UserError:
        raise
    except Exception as error:   # the exporter's own failures, whatever their type
        if is_out_of_memory(error) or onednn_failed(error):
            raise   # for the caller's memory_guard, which says what to reduce
        first = (str(error).strip().splitlines() or [''])[0]
        raise UserError('exporting %s for %dx%d images to ONNX failed (%s: %s)'
                        % (pipe.network_class, image_size[1], image_size[0],
                           type(error).__name__, first)) from None


def _export(onnx, pipe, image_size, resize, path, metadata):
    _register_translations()
    import mxnet as mx
    from mxnet.onnx.mx2onnx._export_onnx import MXNetGraph
    from network.portable import INPUT_NAMES, OUTPUT_NAMES, portable_prediction

    block = portable_prediction(pipe.config, pipe.network, image_size, resize)
    inputs = [mx.sym.var(name, dtype='uint8') for name in INPUT_NAMES]
    outputs = block(*inputs)
    sym = mx.sym.Group([mx.sym.identity(out, name=name) for out, name in zip(outputs, OUTPUT_NAMES)])
    in_shape = (1,) + tuple(image_size) + (3,)
    sym = concrete_symbol(sym, {name: in_shape for name in INPUT_NAMES})
    params = {param.name: param.data() for param in block.collect_params().values()}
    params = {name: value for name, value in params.items() if name in sym.list_arguments()}
    uint8 = onnx.TensorProto.UINT8
    with _translating(onnx):
        graph = MXNetGraph().create_onnx_graph_proto(
            sym, params, in_shapes=[in_shape, in_shape], in_types=[uint8, uint8],
            opset_version=TRANSLATION_OPSET, dynamic=False)
    _weights_as_constants(graph)
    _document(graph, image_size)
    model = onnx.helper.make_model(graph, producer_name='maskflownet-mx',
                                   opset_imports=[onnx.helper.make_opsetid('', EXPORT_OPSET)])
    model.ir_version = min(model.ir_version, 8)   # onnxruntime reads IR 8 and newer back to 1.14
    model.doc_string = ('MaskFlownet optical flow (%s) for %dx%d uint8 images; see the inputs '
                        'and outputs, and docs/onnx.md' % (pipe.network_class, image_size[1],
                                                           image_size[0]))
    for key, value in sorted(metadata.items()):
        entry = model.metadata_props.add()
        entry.key, entry.value = METADATA_PREFIX + key, str(value)
    onnx.checker.check_model(model)
    with open(path, 'wb') as f:
        f.write(model.SerializeToString())


@contextlib.contextmanager
def _translating(onnx):
    """The exporter's own check of its graph, against the opset the model declares (it checks
    against the newest, where ReduceMean and others take other arguments); and its stray
    prints (one per reversed scalar operation) kept off standard output."""
    check_graph = onnx.checker.check_graph
    context = onnx.checker.C.CheckerContext()
    context.ir_version = onnx.IR_VERSION
    context.opset_imports = {'': EXPORT_OPSET}
    onnx.checker.check_graph = lambda graph, *args, **kwargs: check_graph(graph, context)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        onnx.checker.check_graph = check_graph


def _weights_as_constants(graph):
    """Drop the weights from the graph's inputs: as initializers alone they are constants. And
    drop the initializers that no node reads (the exporter leaves a few behind)."""
    constant = {init.name for init in graph.initializer}
    kept = [value for value in graph.input if value.name not in constant]
    del graph.input[:]
    graph.input.extend(kept)
    read = {name for node in graph.node for name in node.input}
    used = [init for init in graph.initializer if init.name in read]
    del graph.initializer[:]
    graph.initializer.extend(used)


def _document(graph, image_size):
    height, width = image_size
    docs = {
        'image_1': 'first image, (1, %d, %d, 3) uint8, channels in the order the checkpoint '
                   'was trained on (BGR for predict_new_data.py, as the original fed them)'
                   % (height, width),
        'image_2': 'second image, like image_1',
        'flow': 'flow from image_1 to image_2, (1, %d, %d, 2) float32, (x, y) in pixels of '
                'the images' % (height, width),
        'occ_mask': "learned occlusion mask, (1, %d, %d, 1) float32 in [0, 1], 1 = visible in "
                    "both images (MaskFlownet: its MaskFlownet-S stage's)" % (height, width),
    }
    for value in list(graph.input) + list(graph.output):
        value.doc_string = docs.get(value.name, '')


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def export_metadata(pipe, checkpoint, checkpoint_sha256, image_size, net_size):
    """What a model records of itself (under ``maskflownet.*``): the checkpoint (file name and
    sha256), the sha256 of its loaded weights as ``--predict`` records it, the network class and
    config, the image and network sizes, the export format."""
    from .settings import weights_sha256
    return {'checkpoint': os.path.basename(os.fspath(checkpoint)),
            'checkpoint_sha256': checkpoint_sha256,
            'weights_sha256': weights_sha256(pipe.network),
            'network_class': pipe.network_class,
            'network_config': json.dumps(pipe.config['network'].value, sort_keys=True),
            'image_size': '%d,%d' % tuple(image_size), 'network_size': '%d,%d' % tuple(net_size),
            'format': str(EXPORT_FORMAT)}


def parse_size(spec):
    """``--size H,W``: the image size of the export, positive, at most MAX_SIDE_PX per side."""
    try:
        size = tuple(int(v) for v in spec.split(','))
    except ValueError:
        size = ()
    if len(size) != 2 or min(size) < 1:
        raise UserError('--size %s: expected the image size as H,W in pixels, e.g. 436,1024'
                        % spec)
    check_side('--size %s' % spec, size)
    return size


def export_file(out, config_name, checkpoint_spec, size, resize='', download=False):
    """``python -m engine.onnx_export``: check the options, then write the model; returns the
    line to print."""
    from common import files
    from common.config import load_config
    from common.options import parse_resize
    from network.conventions import network_size
    from .runs import find_checkpoint, find_or_download
    if not out.endswith('.onnx'):
        raise UserError('%s: the output must end in .onnx' % out)
    image_size, resize = parse_size(size), parse_resize(resize)
    net_size = network_size(image_size, resize)
    files.check_output_paths([out])
    import_onnx()
    config = load_config(config_name, 'network')
    if download:
        path, _, _ = find_or_download(checkpoint_spec, config.network_class,
                                      config_source=config.source)
    else:
        path, _, _ = find_checkpoint(checkpoint_spec)
    from .published import loaded_pipeline
    pipe = loaded_pipeline(config, path, keep_graph_memory=False)
    metadata = export_metadata(pipe, path, file_sha256(path), image_size, net_size)
    with files.atomic_output(out) as tmp, memory_guard(
            'exporting for network size %dx%d' % net_size[::-1], '--size or --resize'):
        export_onnx(pipe, image_size, resize, tmp, metadata)
    return ('%s: %s for %dx%d images (network %dx%d), ONNX opset %d, %.1f MB, from %s'
            % (out, pipe.network_class, image_size[1], image_size[0], net_size[1], net_size[0],
               EXPORT_OPSET, os.path.getsize(out) / 1e6, path))


def main(argv=None):
    parser = ArgumentParser(
        prog='python -m engine.onnx_export',
        description='Export MaskFlownet-S or MaskFlownet with its pre- and post-processing to '
                    'an ONNX model for one image size (docs/onnx.md).')
    parser.add_argument('config', help='network config: a name in config/ (MaskFlownet.yaml) or '
                                       'a path')
    parser.add_argument('out', help='the model to write (.onnx)')
    add_checkpoint_options(parser)
    parser.add_argument('--size', required=True,
                        help='image size H,W (pixels) that the model takes, e.g. 436,1024')
    parser.add_argument('--resize', default='',
                        help='network input size H,W (multiples of 64); default: the next '
                             'multiple of 64')
    args = parser.parse_args(argv)
    prepare_process()

    def body():
        check_environment()
        print(export_file(args.out, args.config, args.checkpoint, args.size, args.resize,
                          args.download))
    return run(body)


if __name__ == '__main__':
    sys.exit(main())
