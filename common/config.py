"""Reading the YAML configs in ``config/`` (network and dataset configs alike).

A config is a nested mapping. ``load_config(path, kind)`` checks it against the schema of its
kind (``common.schema``) as a whole when it is read, and fills in the schema's defaults: every
key of the schema is then present. ``Config`` wraps it so that
``cfg.optimizer.learning_rate.get(default)`` reads a value or falls back to a default (for a
config built in code, which has only the keys it was given). Keys that are Python keywords or
clash with a method name (``class``, ``get``, ``value``) are read with ``getattr(node, 'class')``
or ``node['get']``.
"""
from pathlib import Path

import yaml

from common.errors import UserError
from common.schema import NETWORK_CLASSES, check_config

CONFIG_DIR = Path(__file__).resolve().parent.parent / 'config'

_MISSING = object()


class Config:
    """One node of a nested config: a key path and the value stored there (if any)."""

    def __init__(self, value=None, key='', *, _present=True, source=None, raw=None):
        # Names start with an underscore so they never clash with config keys.
        self._source = source
        self._value = value
        self._key = key
        self._present = _present
        self._raw = value if raw is None else raw

    def __getattr__(self, name):
        if name.startswith('_'):
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, name):
        key = f'{self._key}.{name}' if self._key else name
        child = self._value.get(name, _MISSING) if isinstance(self._value, dict) else _MISSING
        if child is _MISSING:
            return Config(None, key, _present=False, source=self._source)
        return Config(child, key, source=self._source)

    @property
    def present(self):
        """Whether this key exists in the file (even if its value is null)."""
        return self._present

    def __bool__(self):
        return self._present

    @property
    def value(self):
        """The raw stored value, or None when the key is absent."""
        return self._value if self._present else None

    @property
    def key(self):
        """The dotted key path of this node, e.g. ``optimizer.learning_rate``."""
        return self._key

    def get(self, default=None):
        """The stored value, or ``default`` when absent."""
        return self._value if self._present else default

    @property
    def raw(self):
        """The mapping as the file wrote it, without the defaults a checked load fills in (what
        settings records keep, as they always did)."""
        return self._raw

    @property
    def source(self):
        """The file this config was read from (None for a config built in code)."""
        return self._source

    @property
    def network_class(self):
        """``network.class``, required: a file without it is not a network config."""
        node = self['network']['class']
        if node.value in NETWORK_CLASSES:
            return node.value
        where = self._source or 'the network config'
        if not node.present:
            raise UserError(f'{where}: no network.class (MaskFlownet_S or MaskFlownet): not a '
                            f'network config (dataset configs go after --dataset_cfg)')
        raise UserError(f'{where}: network.class {node.value!r} is not one of '
                        f'{", ".join(NETWORK_CLASSES)}')

    def __repr__(self):
        shown = repr(self._value) if self._present else '<absent>'
        return f'Config({self._key or "<root>"}={shown})'


def _available_names():
    return sorted(p.stem for p in CONFIG_DIR.glob('*.yaml') if p.stem != 'datasets')


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.safe_load's loader, refusing a key given twice in one mapping (YAML itself keeps
    the last one silently: a misedited config would run with the other value)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, 'the key %r is given twice' % (key,), key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                                 _UniqueKeyLoader.construct_mapping)


def read_yaml(path, what='config'):
    """The data of a YAML file, read safely (no code runs, no key twice); a UserError naming
    the file for anything else (not YAML, not UTF-8, nested beyond reason, unreadable)."""
    try:
        with open(path, encoding='utf-8') as f:
            return yaml.load(f, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        problem = ' '.join(str(exc).split())
        raise UserError(f'{path}: malformed YAML: {problem[:300]}') from None
    except UnicodeDecodeError:
        raise UserError(f'{path}: not a text file in UTF-8 (a {what} is YAML)') from None
    except RecursionError:
        raise UserError(f'{path}: nested too deeply to be a {what}') from None
    except OSError as exc:
        raise UserError(f'{path}: cannot read {what}: {exc.strerror or exc}') from None


def resolve_config_path(name_or_path):
    """An existing file path as given, else ``config/<name>`` or ``config/<name>.yaml``."""
    given = Path(name_or_path)
    if given.is_file():
        return given
    if given.exists():
        raise UserError(f'config {name_or_path}: not a regular file')
    candidates = [CONFIG_DIR / str(name_or_path)]
    if given.suffix != '.yaml':
        candidates.append(CONFIG_DIR / f'{name_or_path}.yaml')
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = ', '.join(dict.fromkeys(str(c) for c in [given] + candidates))
    raise UserError(f'config {name_or_path!r} not found (looked for {looked}); '
                    f'available configs: {", ".join(_available_names()) or "none"}')


def load_config(name_or_path, kind=None):
    """Read a YAML config (by path or by name in ``config/``) into a ``Config``; with ``kind``
    ('network' or 'dataset') it is checked against that kind's schema first."""
    path = resolve_config_path(name_or_path)
    data = read_yaml(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(f'{path}: top level of a config must be a mapping, got {type(data).__name__}')
    raw = data
    if kind is not None:   # the checked values, with the schema's defaults filled in
        data = check_config(data, kind, str(path)).model_dump(by_alias=True)
    return Config(data, source=str(path), raw=raw)
