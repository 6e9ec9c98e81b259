"""--download of published checkpoints, from a loopback HTTP server (never the internet): a good
file lands and loads; a corrupted file and a dropped connection leave nothing at the target."""
import http.server
import os
import subprocess
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine import published

from conftest import expect_cli_error, run_predict_cli, write_deterministic_checkpoint

COMMIT = 'c0ffee' * 6 + 'c0ff'


class Server:
    """http.server on 127.0.0.1 (port 0): /raw/<commit>/weights/<file> from ``files``, the
    ``drop`` ones cut off after half of their bytes, with their full Content-Length announced."""

    def __init__(self):
        self.files, self.drop, self.requests = {}, set(), []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                name = self.path.rpartition('/')[2]
                if name not in server.files:
                    self.send_error(404)
                    return
                body = server.files[name]
                self.send_response(200)
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body[:len(body) // 2] if name in server.drop else body)
                self.wfile.flush()
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={'poll_interval': 0.05}, daemon=True)
        self.thread.start()
        self.base = 'http://127.0.0.1:%d/raw' % self.httpd.server_address[1]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


@pytest.fixture(scope='module')
def good_file(tmp_path_factory):
    """A real MaskFlownet-S checkpoint and its blob id as git itself computes it."""
    folder = tmp_path_factory.mktemp('good')
    path = write_deterministic_checkpoint('MaskFlownet_S', folder / 'g.params')
    blob_id = subprocess.run(['git', 'hash-object', str(path)], capture_output=True, text=True,
                             check=True).stdout.strip()
    return path, blob_id


@pytest.fixture
def server(good_file, tmp_path, monkeypatch):
    """A loopback server with three published entries (good, corrupted, dropped), run from
    ``tmp_path`` (weights/ is relative to the working directory)."""
    path, blob_id = good_file
    content = path.read_bytes()
    corrupted = bytearray(content)
    corrupted[len(corrupted) // 3] ^= 0xFF
    entries = []
    served = Server()
    for run, body in (('tstGood', content), ('tstBad', bytes(corrupted)), ('tstDrop', content)):
        entry = published.Published(run, '%s-0000_500.params' % run, 'MaskFlownet_S',
                                    'MaskFlownet_S_ft.yaml', 'a test', blob_id, COMMIT)
        entries.append(entry)
        served.files[entry.file] = body
    served.drop.add('tstDrop-0000_500.params')
    monkeypatch.setattr(published, 'PUBLISHED', tuple(entries))
    monkeypatch.setattr(published, 'TIMEOUT_S', 10)
    monkeypatch.setenv(published.URL_VARIABLE, served.base)
    monkeypatch.chdir(tmp_path)
    images = []
    rng = np.random.default_rng(0)
    for name in ('a.png', 'b.png'):
        cv2.imwrite(name, rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
        images.append(name)
    served.images = images
    yield served
    served.close()


def predict_args(server, run, config='MaskFlownet_S.yaml', download=True):
    return (['flow.flo', config, '--image_1', server.images[0], '--image_2', server.images[1],
             '-c', run] + (['--download'] if download else []))


def test_the_blob_id_is_gits(good_file):
    path, blob_id = good_file
    assert published.git_blob_id(path) == blob_id


def test_a_good_download_lands_verified_and_loads(server, good_file, capsys):
    assert run_predict_cli(predict_args(server, 'tstGood')) == 0
    assert server.requests == ['/raw/%s/weights/tstGood-0000_500.params' % COMMIT]
    target = os.path.join('weights', 'tstGood-0000_500.params')
    assert open(target, 'rb').read() == good_file[0].read_bytes()
    assert os.listdir('weights') == ['tstGood-0000_500.params']
    out = capsys.readouterr().out
    assert 'downloaded, git blob id %s verified' % good_file[1] in out
    assert 'flow.flo: flow 64x64 from weights/tstGood-0000_500.params' in out
    # Present now: found in weights/ without asking the server again.
    assert run_predict_cli(predict_args(server, 'tstGood')) == 0
    assert len(server.requests) == 1
    # Into the wrong network: refused with the config that fits.
    expect_cli_error(capsys, predict_args(server, 'tstGood', 'MaskFlownet.yaml', download=False),
                     'does not fit MaskFlownet', 'use MaskFlownet_S_ft.yaml')


@pytest.mark.parametrize('run, why', [('tstBad', "is not the original's (git blob id"),
                                      ('tstDrop', 'connection closed early')])
def test_a_corrupted_or_cut_download_leaves_nothing(server, capsys, run, why):
    target = os.path.join('weights', '%s-0000_500.params' % run)
    expect_cli_error(capsys, predict_args(server, run), target, why, 'nothing written')
    assert len(server.requests) == 1
    assert os.listdir('weights') == []   # neither the file nor a temporary


def test_no_network_access_without_download_nor_for_a_wrong_config(server, capsys):
    expect_cli_error(capsys, predict_args(server, 'tstGood', download=False),
                     'no checkpoint tstGood', 'add --download to fetch tstGood-0000_500.params')
    expect_cli_error(capsys, predict_args(server, 'tstGood', 'MaskFlownet.yaml'),
                     'builds MaskFlownet', 'use MaskFlownet_S_ft.yaml')
    assert server.requests == []


def test_a_missing_file_on_the_server_is_one_line(server, capsys):
    del server.files['tstGood-0000_500.params']
    expect_cli_error(capsys, predict_args(server, 'tstGood'), 'HTTP 404', 'nothing written')


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
    text = (Path(__file__).resolve().parent.parent / 'weights' / 'README.md').read_text()
    start = text.index('-->\n', text.index('<!-- published table')) + len('-->\n')
    end = text.index('\n<!-- end of published table')
    assert text[start:end] == published.markdown_table(), (
        'regenerate the table in weights/README.md from engine.published.markdown_table()')
    for entry in published.PUBLISHED:   # every published config exists
        assert (Path(__file__).resolve().parent.parent / 'config' / entry.config).is_file()
