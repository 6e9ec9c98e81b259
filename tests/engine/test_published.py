"""engine/published.py: the table of the original's published checkpoints, their URLs and the
git blob ids that verify a download (the downloads themselves: cli/test_predict_new_data.py)."""
from engine import published
from tests.helpers import REPO


def test_the_blob_id_is_gits(good_file):
    path, blob_id = good_file
    assert published.git_blob_id(path) == blob_id


def test_the_published_table_and_its_urls(monkeypatch):
    monkeypatch.delenv(published.URL_VARIABLE, raising=False)
    entry = published.lookup('5adNov03')
    assert entry.file == '5adNov03-0005_1000000.params' and entry.network_class == 'MaskFlownet'
    assert published.url(entry) == ('https://github.com/microsoft/MaskFlownet/raw/'
                                    '5cba12772e2201f0d1c1e27161d224e585334571/weights/'
                                    '5adNov03-0005_1000000.params')
    assert published.lookup('771Sep25:500000').commit == '852282fabf9c3329cf0fb0e9edc9d277cba4005b'
    assert published.lookup('771Sep25:1000') is None and published.lookup('zzz') is None
    monkeypatch.setenv(published.URL_VARIABLE, 'http://mirror.example/w/')
    assert published.url(entry).startswith('http://mirror.example/w/5cba1277')


def test_weights_readme_shows_the_published_table_of_the_code():
    """weights/README.md's table is generated from PUBLISHED (they had drifted apart before)."""
    text = (REPO / 'weights' / 'README.md').read_text()
    start = text.index('-->\n', text.index('<!-- published table')) + len('-->\n')
    end = text.index('\n<!-- end of published table')
    assert text[start:end] == published.markdown_table(), (
        'regenerate the table in weights/README.md from engine.published.markdown_table()')
    for entry in published.PUBLISHED:   # every published config exists
        assert (REPO / 'config' / entry.config).is_file()
