"""Where each dataset lives on disk: set in a YAML file or environment variables, not in source.

Lookup order for a key such as ``sintel``:

1. the environment variable ``MASKFLOWNET_SINTEL``;
2. the key ``sintel`` in the roots file: ``roots_file`` when given, else the file named by the
   environment variable ``MASKFLOWNET_DATASETS``, else ``config/datasets.yaml`` in the repository.

Relative paths in a roots file are relative to that file; relative paths in an environment
variable are relative to the working directory. ``~`` is expanded in both.
"""
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional


from common.config import read_yaml
from common.errors import UserError

DEFAULT_ROOTS_FILE = Path(__file__).resolve().parent.parent / 'config' / 'datasets.yaml'
ROOTS_FILE_ENV = 'MASKFLOWNET_DATASETS'
SAMPLE_ROOTS_FILE = Path(__file__).resolve().parent.parent / 'sample_data' / 'datasets.yaml'

# key -> what the root folder is (quoted in error messages so the user knows what to point at)
DATASETS = {
    'chairs': 'the FlyingChairs_release folder (holding data/ and FlyingChairs_train_val.txt)',
    'things3d': 'the FlyingThings3D_subset folder (holding train/ and val/)',
    'sintel': 'the MPI-Sintel-complete folder (holding training/ and test/)',
    'kitti2012': 'the KITTI 2012 data_stereo_flow folder (holding training/ and testing/)',
    'kitti2015': 'the KITTI 2015 data_scene_flow folder (holding training/ and testing/)',
    'hd1k': 'the HD1K folder (holding hd1k_input/ and hd1k_flow_gt/)',
}


def env_var(key):
    """The environment variable that overrides the root of dataset ``key``."""
    return 'MASKFLOWNET_' + key.upper()


def _check_key(key):
    if key not in DATASETS:
        raise UserError(f"unknown dataset key '{key}' (known: {', '.join(DATASETS)})")


def _roots_file(roots_file):
    """The roots file to read and whether the user named it explicitly."""
    if roots_file is not None:
        return Path(roots_file), True
    if os.environ.get(ROOTS_FILE_ENV):
        return Path(os.environ[ROOTS_FILE_ENV]), True
    return DEFAULT_ROOTS_FILE, False


def _read_roots_file(path, named):
    if not path.is_file():
        if named:  # a file the user asked for must exist; the shipped default may be absent
            raise UserError(f'{path}: dataset roots file not found')
        return {}
    entries = read_yaml(path, 'dataset roots file')
    if entries is None:  # every key commented out
        return {}
    if not isinstance(entries, dict):
        raise UserError(f'{path}: dataset roots file must be a mapping of key: folder')
    for key, value in entries.items():
        if key not in DATASETS:
            raise UserError(f"{path}: unknown dataset key '{key}' (known: {', '.join(DATASETS)})")
        if value is not None and not isinstance(value, str):
            raise UserError(f"{path}: the value of '{key}' must be a folder path, got {value!r}")
    return entries


def _lookup(key, roots_file, environment=True):
    """(path or None, where it was set, roots file consulted)."""
    _check_key(key)
    value = os.environ.get(env_var(key)) if environment else None
    if value:
        return Path(os.path.expanduser(value)), f'environment variable {env_var(key)}', None
    path, named = _roots_file(roots_file)
    value = _read_roots_file(path, named).get(key)
    if not value:
        return None, None, path
    root = Path(os.path.expanduser(value))
    if not root.is_absolute():
        root = path.parent / root
    return root, f"key '{key}' in {path}", path


def dataset_root(key, roots_file=None, environment=True):
    """The root folder of dataset ``key`` (one of ``DATASETS``); UserError if unset or missing.

    ``environment=False`` ignores the per-dataset variables (``--debug`` on the bundled samples).
    """
    root, source, path = _lookup(key, roots_file, environment)
    if root is None:
        raise UserError(f"dataset root '{key}' is not set: set {env_var(key)} or the key "
                        f"'{key}' in {path} to {DATASETS[key]}")
    if not root.is_dir():
        problem = 'is not a folder' if root.exists() else 'does not exist'
        raise UserError(f'{root}: dataset root {problem} (set by {source}); '
                        f'expected {DATASETS[key]}')
    return root


def configured(key, roots_file=None, environment=True):
    """Whether dataset ``key`` has a root set (a broken roots file still raises).

    A root that is set but missing counts as configured, so that using it reports the wrong
    path instead of silently skipping the dataset.
    """
    root, _, _ = _lookup(key, roots_file, environment)
    return root is not None


@dataclass(frozen=True)
class Roots:
    """Where to look up dataset roots: a roots file (None: the default lookup) and whether the
    per-dataset environment variables apply."""
    file: Optional[Path] = None
    environment: bool = True

    def root(self, key):
        return dataset_root(key, self.file, self.environment)

    def configured(self, key):
        return configured(key, self.file, self.environment)


def skip_note(key):
    """Why dataset ``key`` is skipped: no root is set for it, and how to set one."""
    return (f'not configured (set {env_var(key)} or `{key}:` in the dataset roots file), '
            f'skipped')
