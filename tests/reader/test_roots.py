"""reader/roots.py: where each dataset lives (a YAML roots file, environment variables)."""
import pytest

from common.errors import UserError
from reader import roots
from tests.helpers import REPO, SAMPLE

pytestmark = pytest.mark.usefixtures('no_root_environment')

CHAIRS = SAMPLE / 'FlyingChairs_release'
SINTEL = SAMPLE / 'MPI-Sintel-complete'
KITTI15 = SAMPLE / 'data_scene_flow'


def write_roots(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def test_yaml_relative_path_is_relative_to_the_yaml_file(tmp_path, monkeypatch):
    (tmp_path / 'cfg' / 'data' / 'sintel').mkdir(parents=True)
    roots_file = write_roots(tmp_path / 'cfg' / 'roots.yaml', 'sintel: data/sintel\n')
    monkeypatch.chdir(tmp_path)  # a cwd-relative reading would look for tmp/data/sintel
    assert roots.dataset_root('sintel', roots_file) == tmp_path / 'cfg' / 'data' / 'sintel'


def test_roots_file_from_environment_and_env_var_precedence(tmp_path, monkeypatch):
    (tmp_path / 'from_file').mkdir()
    (tmp_path / 'from_env').mkdir()
    roots_file = write_roots(tmp_path / 'roots.yaml', f'kitti2015: {tmp_path / "from_file"}\n')
    monkeypatch.setenv('MASKFLOWNET_DATASETS', str(roots_file))
    assert roots.dataset_root('kitti2015') == tmp_path / 'from_file'
    assert roots.configured('kitti2015') and not roots.configured('kitti2012')
    monkeypatch.setenv('MASKFLOWNET_KITTI2015', str(tmp_path / 'from_env'))
    assert roots.dataset_root('kitti2015') == tmp_path / 'from_env'


def test_unset_root_names_env_var_key_and_file(tmp_path):
    roots_file = write_roots(tmp_path / 'roots.yaml', '# nothing set\n')
    with pytest.raises(UserError) as error:
        roots.dataset_root('hd1k', roots_file)
    message = str(error.value)
    assert 'MASKFLOWNET_HD1K' in message and "'hd1k'" in message and str(roots_file) in message
    assert 'hd1k_input' in message and '\n' not in message
    assert not roots.configured('hd1k', roots_file)


def test_missing_root_folder_names_the_path_and_what_was_expected(tmp_path, monkeypatch):
    missing = tmp_path / 'no_such_sintel'
    monkeypatch.setenv('MASKFLOWNET_SINTEL', str(missing))
    with pytest.raises(UserError) as error:
        roots.dataset_root('sintel')
    message = str(error.value)
    assert str(missing) in message and 'MASKFLOWNET_SINTEL' in message
    assert 'MPI-Sintel-complete' in message and 'does not exist' in message
    assert roots.configured('sintel')   # set, so using it reports the wrong path


@pytest.mark.parametrize('text, problem', [
    ('sintl: /data\n', "unknown dataset key 'sintl'"),
    ('- sintel\n', 'mapping'),
    ('sintel: [1, 2]\n', "value of 'sintel'"),
    ('sintel: "unterminated\n', 'malformed YAML'),
    ('sintel: /a\nsintel: /b\n', "the key 'sintel' is given twice"),
    (b'sintel: /data/\xff\n', 'not a text file in UTF-8'),
    ('sintel: ' + '[' * 5000 + ']' * 5000 + '\n', 'nested too deeply'),
])
def test_malformed_roots_file_is_user_error_naming_it(tmp_path, text, problem):
    roots_file = write_roots(tmp_path / 'roots.yaml', text)
    with pytest.raises(UserError, match=problem) as error:
        roots.dataset_root('sintel', roots_file)
    assert str(roots_file) in str(error.value)


def test_named_roots_file_must_exist(tmp_path, monkeypatch):
    monkeypatch.setenv('MASKFLOWNET_DATASETS', str(tmp_path / 'absent.yaml'))
    with pytest.raises(UserError, match='absent.yaml: dataset roots file not found'):
        roots.dataset_root('chairs')


def test_unknown_key_is_user_error():
    with pytest.raises(UserError, match="unknown dataset key 'flyingchairs'"):
        roots.dataset_root('flyingchairs')


def test_shipped_roots_file_sets_nothing_but_documents_every_key():
    text = roots.DEFAULT_ROOTS_FILE.read_text()
    import yaml
    assert yaml.safe_load(text) is None
    for key in roots.DATASETS:
        assert f'# {key}: ' in text and roots.env_var(key) in text
    assert not roots.configured('sintel')


def test_sample_data_roots_file_points_at_the_bundled_datasets(monkeypatch):
    monkeypatch.chdir(REPO)
    monkeypatch.setenv('MASKFLOWNET_DATASETS', 'sample_data/datasets.yaml')
    assert roots.dataset_root('chairs').resolve() == CHAIRS
    assert roots.dataset_root('sintel').resolve() == SINTEL
    assert roots.dataset_root('kitti2015').resolve() == KITTI15
    assert not roots.configured('things3d')
