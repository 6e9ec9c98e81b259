"""The onnxruntime backend (``--backend onnxruntime``; docs/onnx.md): ``OnnxPipeline`` predicts
like ``network.pipeline.Pipeline``, from models exported once per image size and cached.

A cached prediction never loads MXNet: this module imports only numpy, onnxruntime and the
project's MXNet-free modules at the top; MXNet comes in only to export a model that the cache
lacks (``engine.onnx_export``) and for the NDArrays that ``labelled_batches`` hands to
``engine.evaluate``.

The cache (``weights/onnx/``, or ``MASKFLOWNET_ONNX_CACHE``) holds one model per checkpoint,
network config and size, named ``{class}_{W}x{H}_net{w}x{h}_{key}.onnx``, with a record
``... .json`` beside it: the fields of the key (export format, opset, network class and config,
the checkpoint file's sha256, image and network size) and the model's own sha256 and length.
A model is used only when its record holds the same fields and the model's bytes hash to the
recorded sha256; anything else (a truncated or corrupt model, a missing or unreadable record,
another key) is exported again. Both files are written together, atomically.
"""
import hashlib
import json
import os
from typing import NamedTuple

import numpy as np

from common import files
from common.errors import UserError
from network.conventions import check_pairs, network_size

from .onnx_export import EXPORT_FORMAT, EXPORT_OPSET, export_metadata, file_sha256

BACKENDS = ('mxnet', 'onnxruntime')
CACHE_VARIABLE = 'MASKFLOWNET_ONNX_CACHE'
DEFAULT_CACHE = os.path.join('weights', 'onnx')
# Sessions an OnnxPipeline keeps: one per image size (KITTI's frames come in several), each
# holding its weights (their working memory is malloc's: see OnnxPipeline._open).
MAX_SESSIONS = 4
INSTALL_HINT = 'pip install -r requirements.txt; see docs/onnx.md'
GPU_HINT = ('pip uninstall -y onnxruntime && pip install "onnxruntime-gpu[cuda,cudnn]==1.26.0" '
            '(CUDA 12, cuDNN 9; see docs/onnx.md)')


def import_onnxruntime():
    """The onnxruntime package, or a UserError (one line) naming what to install."""
    try:
        import onnxruntime
    except ImportError:
        raise UserError('--backend onnxruntime: the onnxruntime package is not installed (%s)'
                        % INSTALL_HINT) from None
    # Its failures reach us as exceptions, which become our one line; its own log lines
    # (a coloured '[E:onnxruntime:...] std::bad_alloc' before it) would make that two.
    onnxruntime.set_default_logger_severity(4)   # fatal only
    return onnxruntime


class Device(NamedTuple):
    """What callers read of a Pipeline's ``ctx`` entries (``ctx[0].device_type``)."""
    device_type: str    # 'cpu' or 'gpu'
    device_id: int = 0


def parse_device(spec):
    """``-g`` for the onnxruntime backend: '' -> the CPU, 'N' -> GPU N through onnxruntime's CUDA
    provider, which must be installed. One GPU at most."""
    spec = (spec or '').strip()
    if not spec:
        return Device('cpu')
    ids = spec.split(',')
    if len(ids) > 1:
        raise UserError('-g %s: the onnxruntime backend runs on one GPU; give one id, e.g. -g 0'
                        % spec)
    if not ids[0].isdigit():
        raise UserError("-g %s: expected a GPU id such as '0'" % spec)
    ort = import_onnxruntime()
    if 'CUDAExecutionProvider' not in ort.get_available_providers():
        raise UserError('-g %s: this onnxruntime (%s) has no CUDA provider; for NVIDIA GPUs: %s'
                        % (spec, ort.__version__, GPU_HINT))
    return Device('gpu', int(ids[0]))


def cache_folder():
    return os.path.expanduser(os.environ.get(CACHE_VARIABLE) or DEFAULT_CACHE)


def _threads():
    """The CPU threads of a session: OMP_NUM_THREADS (which the command lines set to the cores
    this process may use, see common.devices), else those cores."""
    threads = os.environ.get('OMP_NUM_THREADS', '').strip()
    return int(threads) if threads.isdigit() and int(threads) > 0 else len(os.sched_getaffinity(0))


class ModelCache:
    """Exported models of one checkpoint and network config, by image and network size."""

    def __init__(self, config, checkpoint, checkpoint_sha256, folder=None):
        self.config = config
        self.checkpoint = os.fspath(checkpoint)
        self.checkpoint_sha256 = checkpoint_sha256
        self.folder = folder or cache_folder()

    def identity(self):
        """What every exported model of this checkpoint and config depends on."""
        return {'format': EXPORT_FORMAT, 'opset': EXPORT_OPSET,
                'network_class': self.config.network_class,
                'network_config': json.loads(json.dumps(self.config['network'].value)),
                'checkpoint_sha256': self.checkpoint_sha256}

    def fields(self, image_size, net_size):
        """What an exported model depends on: the key's fields."""
        return dict(self.identity(), image_size=list(image_size), network_size=list(net_size))

    def paths(self, image_size, net_size):
        """(model, record) paths of a size."""
        fields = self.fields(image_size, net_size)
        key = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()
        name = '%s_%dx%d_net%dx%d_%s' % (fields['network_class'], image_size[1], image_size[0],
                                         net_size[1], net_size[0], key[:16])
        return os.path.join(self.folder, name + '.onnx'), os.path.join(self.folder, name + '.json')

    def load(self, image_size, net_size):
        """The verified bytes of the cached model of a size, or None (missing or not matching)."""
        model_path, record_path = self.paths(image_size, net_size)
        try:
            with open(record_path) as f:
                record = json.load(f)
            if not isinstance(record, dict) or record.get('fields') != self.fields(image_size,
                                                                                   net_size):
                return None
            # not a link to a device or an endless file: a regular file of the recorded size
            if (not os.path.isfile(model_path)
                    or os.path.getsize(model_path) != record.get('model_bytes')):
                return None
            with open(model_path, 'rb') as f:
                model = f.read()
        except (OSError, ValueError):
            return None
        if (len(model) != record.get('model_bytes')
                or hashlib.sha256(model).hexdigest() != record.get('model_sha256')):
            return None
        return model

    def export(self, pipe, image_size, net_size, resize):
        """Export the model of a size with ``pipe`` (a Pipeline with the checkpoint loaded) into
        the cache, model and record together; return its bytes."""
        from .onnx_export import export_onnx
        model_path, record_path = self.paths(image_size, net_size)
        fields = self.fields(image_size, net_size)
        metadata = export_metadata(pipe, self.checkpoint, self.checkpoint_sha256, image_size,
                                   net_size)
        weights = metadata['weights_sha256']
        if os.path.isdir(self.folder):
            files.remove_stale_temporaries(self.folder)   # what killed exports left behind
        with files.atomic_outputs(model_path, record_path) as (tmp_model, tmp_record):
            export_onnx(pipe, image_size, resize, tmp_model, metadata)
            with open(tmp_model, 'rb') as f:
                model = f.read()
            record = {'fields': fields, 'model_sha256': hashlib.sha256(model).hexdigest(),
                      'model_bytes': len(model), 'weights_sha256': weights,
                      'checkpoint': self.checkpoint}
            with open(tmp_record, 'w') as f:
                json.dump(record, f, indent=1, sort_keys=True)
                f.write('\n')
        return model

    def recorded_weights_sha256(self):
        """The weights sha256 (settings.weights_sha256) that a record of this checkpoint
        holds, or None."""
        try:
            names = sorted(os.listdir(self.folder))
        except OSError:
            return None
        wanted = self.identity()
        for name in names:
            if name.endswith('.json') and name.startswith(self.config.network_class + '_'):
                try:
                    with open(os.path.join(self.folder, name)) as f:
                        record = json.load(f)
                    if all(record['fields'][key] == value for key, value in wanted.items()):
                        return record['weights_sha256']
                except (OSError, ValueError, KeyError, TypeError):
                    continue
        return None


class OnnxPipeline:
    """A config's network with a checkpoint, run by onnxruntime: the inference interface of
    ``network.pipeline.Pipeline`` (``predict``, ``predict_pair``, ``labelled_batches``,
    ``ctx``, ``config``, ``network_class``). One pair per network call; ``batch_size`` only
    groups the pairs of ``labelled_batches``.

    ``checkpoint``: the .params file (its sha256 keys the cache); ``device``: a ``Device``
    (parse_device). The first prediction at an image size (and network size) loads its model
    from the cache, exporting it there first if needed; the ``max_sessions`` sizes used last
    stay loaded.
    """

    def __init__(self, config, checkpoint, device=None, cache=None, max_sessions=MAX_SESSIONS):
        self.ort = import_onnxruntime()
        self.config = config
        self.network_class = config.network_class
        self.checkpoint = os.fspath(checkpoint)
        self.device = device or Device('cpu')
        self.ctx = [self.device]
        self.device_type = self.device.device_type   # engine.api's backend member
        self.cache = cache or ModelCache(config, checkpoint, file_sha256(checkpoint))
        self.max_sessions = max_sessions
        self._sessions = {}   # (image size, network size) -> session, least recently used first
        self._exporter = None    # an MXNet Pipeline with the checkpoint, made for the first export
        self._weights_sha256 = None

    # --- sessions --------------------------------------------------------------------------

    def session(self, image_size, resize=None):
        """The session for images of ``image_size`` (H, W) at network size ``resize`` (None: the
        next multiples of 64)."""
        image_size = tuple(int(v) for v in image_size)
        net_size = tuple(network_size(image_size, resize))
        key = image_size, net_size
        if key not in self._sessions:
            model = self.cache.load(image_size, net_size)
            if model is None:
                model = self.cache.export(self._export_pipeline(), image_size, net_size, resize)
            while len(self._sessions) >= self.max_sessions:
                del self._sessions[next(iter(self._sessions))]   # the least recently used
            self._sessions[key] = self._open(model, self.cache.paths(image_size, net_size)[0])
        self._sessions[key] = self._sessions.pop(key)   # now the most recently used
        return self._sessions[key]

    def _export_pipeline(self):
        """An MXNet Pipeline with the checkpoint whose sha256 keys the cache: UserError if the
        file changed since this pipeline was made (a model of other weights would be cached
        under the old file's key)."""
        if self._exporter is None:
            from .published import loaded_pipeline
            self._check_unchanged()
            pipe = loaded_pipeline(self.config, self.checkpoint, keep_graph_memory=False)
            self._check_unchanged()   # and not while it loaded
            self._exporter = pipe
        return self._exporter

    def _check_unchanged(self):
        try:
            unchanged = file_sha256(self.checkpoint) == self.cache.checkpoint_sha256
        except OSError as error:
            raise UserError('%s: cannot read it again (%s)'
                            % (self.checkpoint, error.strerror or error)) from None
        if not unchanged:
            raise UserError('%s: changed since it was loaded; load the model again'
                            % self.checkpoint)

    def _open(self, model, path):
        ort = self.ort
        options = ort.SessionOptions()
        options.intra_op_num_threads = _threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 4   # fatal only: errors come as exceptions (see above)
        # Working memory from malloc, freed after each run, not from onnxruntime's arenas: one
        # block planned for all the intermediates of a run (the memory pattern) held MaskFlownet
        # at 1.6 GB against 0.9 GB without, and each session's arena keeps its peak, one per
        # image size. The command lines keep freed memory in the process for the next run
        # (common.devices.keep_freed_memory), which makes this as fast as the arena: without
        # that, 35 % slower (docs/performance.md, "onnxruntime").
        options.enable_mem_pattern = False
        options.enable_cpu_mem_arena = False
        if self.device.device_type == 'gpu':
            if hasattr(ort, 'preload_dlls'):   # CUDA and cuDNN from NVIDIA's wheels, if there
                try:
                    ort.preload_dlls()
                except Exception:   # the provider's own check below says what is missing
                    pass
            providers = [('CUDAExecutionProvider', {'device_id': self.device.device_id}),
                         'CPUExecutionProvider']
        else:
            providers = ['CPUExecutionProvider']
        try:
            session = ort.InferenceSession(model, options, providers=providers)
        except Exception as error:
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise UserError('%s: onnxruntime cannot load this model (%s)' % (path, first)) from None
        if self.device.device_type == 'gpu' and \
                'CUDAExecutionProvider' not in session.get_providers():
            raise UserError('-g %d: onnxruntime could not start its CUDA provider (are the CUDA '
                            '12 and cuDNN 9 libraries installed? %s)' % (self.device.device_id,
                                                                        GPU_HINT))
        return session

    def run(self, img1, img2, resize=None):
        """(flow (H, W, 2) x-y px, occlusion mask (H, W, 1)) of one pair of uint8 images."""
        session = self.session(img1.shape[:2], resize)
        feed = {'image_1': np.ascontiguousarray(img1, np.uint8)[None],
                'image_2': np.ascontiguousarray(img2, np.uint8)[None]}
        try:
            flow, occ_mask = session.run(['flow', 'occ_mask'], feed)
        except Exception as error:
            from .failures import is_out_of_memory
            if is_out_of_memory(error):
                raise MemoryError(str(error)) from None
            raise
        return flow[0], occ_mask[0]

    # --- the Pipeline interface ------------------------------------------------------------

    def predict(self, img1s, img2s, batch_size=1, resize=None, warped=False):
        """Yield (flow (H,W,2) x-y px, occlusion mask (H,W,1), None), as Pipeline.predict."""
        if warped:
            raise UserError('the warped second image is computed by the mxnet backend only')
        check_pairs(img1s, img2s)
        for img1, img2 in zip(img1s, img2s):
            flow, occ_mask = self.run(img1, img2, resize)
            yield flow, occ_mask, None

    def predict_pair(self, img1, img2, resize=None, warped=False):
        return next(self.predict([img1], [img2], batch_size=1, resize=resize, warped=warped))

    def labelled_batches(self, img1s, img2s, labels, masks=None, batch_size=1, resize=None):
        """Pipeline.labelled_batches: (flow, label, mask, epe) NDArrays per batch of
        ``batch_size`` pairs, for ``engine.evaluate``'s metrics (which load MXNet anyway)."""
        from mxnet import nd
        from network.conventions import flow_yx, full_mask, mask_weights
        from network.losses import EpeLossWithMask
        check_pairs(img1s, img2s)
        if masks is None:
            masks = [None] * len(labels)
        epe_with_mask = EpeLossWithMask()
        for start in range(0, len(img1s), batch_size):
            end = start + batch_size
            flows = [self.run(a, b, resize)[0] for a, b in zip(img1s[start:end], img2s[start:end])]
            flow = nd.array(np.stack(flows)[..., ::-1].transpose(0, 3, 1, 2))   # (y, x)
            label = flow_yx(nd.array(np.stack(labels[start:end]).transpose(0, 3, 1, 2)))
            mask = mask_weights(nd.array(np.stack([
                full_mask(l.shape[:2]) if m is None else m
                for l, m in zip(labels[start:end], masks[start:end])]).transpose(0, 3, 1, 2)))
            yield flow, label, mask, epe_with_mask(flow, label, mask)

    # --- identity --------------------------------------------------------------------------

    def weights_sha256(self):
        """settings.weights_sha256 of the checkpoint's weights, as the mxnet backend computes
        it (the settings record of --predict), from a cache record or else computed once."""
        if self._weights_sha256 is None:
            self._weights_sha256 = self.cache.recorded_weights_sha256()
        if self._weights_sha256 is None:
            from .settings import weights_sha256
            self._weights_sha256 = weights_sha256(self._export_pipeline().network)
        return self._weights_sha256


def check_backend(backend, devices=''):
    """Raise UserError now, before any work, unless ``backend`` can run on ``-g devices``;
    returns the onnxruntime Device (None for the mxnet backend)."""
    if backend not in BACKENDS:
        raise UserError('--backend %s: expected one of %s' % (backend, ', '.join(BACKENDS)))
    if backend == 'mxnet':
        return None
    import_onnxruntime()
    device = parse_device(devices)
    folder = cache_folder()
    try:   # where models are exported: found now, not after an export's seconds
        files.check_output_folder(folder)
    except UserError as error:
        raise UserError('%s (the onnxruntime backend\'s model cache; %s moves it)'
                        % (error, CACHE_VARIABLE)) from None
    return device


def open_pipeline(backend, config, checkpoint, device=None, ctx=None):
    """The pipeline of ``backend`` for ``config`` and the checkpoint file ``checkpoint``:
    an OnnxPipeline on ``device``, or an MXNet Pipeline on ``ctx`` with the checkpoint loaded."""
    if backend == 'onnxruntime':
        return OnnxPipeline(config, checkpoint, device)
    from .published import loaded_pipeline
    return loaded_pipeline(config, checkpoint, ctx)
