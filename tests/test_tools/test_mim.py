"""mim, the OpenMMLab command line, with our package: `mim search`, `mim download`, `mim train` and `mim test`
(openmim 0.3.9 on the legacy stack, onedl-mim 0.5.1 on the onedl stack: requirements/<stack>-nodeps.txt), from the
two install routes a user has: the wheel (installed here with `pip install --target` and put first on PYTHONPATH)
and the clone's editable install that tools/setup_env.sh makes (an egg-link under legacy's setuptools 56, PEP 660
under onedl's setuptools 81). docs/get_started.md ("mim") says which route each mim sees.
"""
import json
import os
import shutil
import ssl
import subprocess
import sys
import sysconfig
import threading
from http.server import BaseHTTPRequestHandler
from importlib.metadata import Distribution, PackageNotFoundError, distribution
from pathlib import Path

import pytest
import yaml

from ..conftest import ROOT, official_file

pytest.importorskip('mim', reason='mim is installed on the legacy (openmim) and onedl (onedl-mim) stacks')
pytestmark = [pytest.mark.e2e, pytest.mark.matrix]


def mim_flavour() -> str:
    try:
        distribution('onedl-mim')
        return 'onedl-mim'
    except PackageNotFoundError:
        return 'openmim'


# How each mim finds an installed package's folder, and so which routes it sees: openmim 0.3.9 joins
# pkg_resources' location with the package name (site-packages/convmlp_mm for a wheel; the clone's
# convmlp_mm/ for an egg-link, whose .mim/ links to configs/ and tools/; nothing for a PEP 660 editable
# install, whose location is site-packages). onedl-mim 0.5.1 reads an editable install's direct_url.json (the
# clone), but for a wheel takes the folder of the first file RECORD lists, which pip sorts: the .dist-info
# folder of a distribution named like its package.
ROUTES = {'openmim': ('wheel', 'clone'), 'onedl-mim': ('clone',)}[mim_flavour()]
MIM = str(Path(sys.executable).parent / 'mim')
METAFILES = [ROOT / 'configs' / task / 'metafile.yml' for task in ('classification', 'detection', 'segmentation')]


@pytest.fixture(scope='module', params=ROUTES)
def route(request, tmp_path_factory) -> dict:
    """The environment a mim command runs in for the route; for the wheel, PYTHONPATH leads to its install."""
    if request.param == 'clone':
        site = sysconfig.get_paths()['purelib']  # not the clone's convmlp_mm.egg-info, first on sys.path here
        installed = next(Distribution.discover(name='convmlp_mm', path=[site]), None)
        editable = json.loads(installed and installed.read_text('direct_url.json') or '{}')
        egg_link = Path(site, 'convmlp-mm.egg-link').is_file()
        pep660 = bool(editable.get('dir_info', {}).get('editable'))
        if mim_flavour() == 'onedl-mim':  # it reads direct_url.json; an egg-link's egg-info gives <clone>/README.md
            assert pep660, f'no PEP 660 install of the clone in {site} (egg-link: {egg_link}); ' \
                'requirements/onedl.txt asks for setuptools >= 80, whose `setup.py develop` makes one'
        else:
            assert egg_link or pep660, f'no editable install in {site}'
        return dict(os.environ, CONVMLP_TEST_ROUTE='clone', PYTHONPATH=_without_clone(os.environ.get('PYTHONPATH')))
    target = tmp_path_factory.mktemp('site')
    subprocess.run([sys.executable, '-m', 'pip', 'install', '--no-deps', '-q', '--target', str(target),
                    str(request.getfixturevalue('wheel'))], check=True, capture_output=True, timeout=600)
    return dict(os.environ, CONVMLP_TEST_ROUTE='wheel', PYTHONPATH=str(target))


def _without_clone(pythonpath: 'str | None') -> str:
    """PYTHONPATH less the clone's root, which a user's shell may have put there: it holds the
    convmlp_mm.egg-info that every editable build leaves, which then shadows the install (see
    test_clone_on_pythonpath)."""
    return os.pathsep.join(p for p in (pythonpath or '').split(os.pathsep) if p and Path(p).resolve() != ROOT)


def mim(env: dict, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([MIM, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f'mim {" ".join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}'
    return proc


def test_search_lists_every_model_with_config_and_weights(route, tmp_path):
    mim(route, tmp_path, 'search', 'convmlp_mm', '--field', 'config', 'weight', '--json', 'models.json')
    found = yaml.safe_load((tmp_path / 'models.json').read_text())  # JSON is YAML
    want = {m['Name']: m for path in METAFILES for m in yaml.safe_load(path.read_text())['Models']}
    assert len(want) == 21 and sorted(found['config']) == sorted(want)
    assert found['config'] == {name: m['Config'] for name, m in want.items()}
    assert found['weight'] == {name: m['Weights'] for name, m in want.items()}
    shown = mim(route, tmp_path, 'search', 'convmlp_mm').stdout  # what a user reads
    assert [f'config id: {name}\n' in shown for name in want] == [True] * 21


def test_clone_on_pythonpath(tmp_path):
    """With the clone's root on PYTHONPATH (`export PYTHONPATH=$PWD` in a clone), Python finds the
    convmlp_mm.egg-info that pip's editable build leaves there before the install's metadata. openmim reads its
    location (the clone) and works; onedl-mim 0.5.1 takes the folder of the first source it lists, README.md, and
    fails: docs/get_started.md ("mim") says so and what to do."""
    assert (ROOT / 'convmlp_mm.egg-info').is_dir(), 'the editable install of tools/setup_env.sh leaves it'
    proc = subprocess.run([MIM, 'search', 'convmlp_mm'], cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                          capture_output=True, text=True, timeout=900)
    if mim_flavour() == 'openmim':
        assert proc.returncode == 0 and 'config id: convmlp-s_in1k\n' in proc.stdout, proc.stderr[-3000:]
    else:
        assert proc.returncode != 0 and f'{ROOT / "README.md"}/model-index.yml' in proc.stderr, proc.stderr[-3000:]


class _Tunnel(BaseHTTPRequestHandler):
    """An HTTPS proxy that answers every CONNECT itself, with the test's certificate for the requested host,
    and serves ``files`` (URL path -> bytes): the official weights' host, on 127.0.0.1."""
    files: dict = {}
    context: ssl.SSLContext
    seen: list = []

    def do_CONNECT(self) -> None:  # noqa: N802 (http.server's naming)
        self.seen.append(f'CONNECT {self.path}')
        self.send_response(200, 'Connection established')
        self.end_headers()
        tls = self.context.wrap_socket(self.connection, server_side=True)
        _Serve(tls, self.client_address, self.server)  # the tunnelled requests, until the client closes
        self.close_connection = True

    def log_message(self, *args) -> None:
        pass


class _Serve(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        _Tunnel.seen.append(f'GET {self.headers["Host"]}{self.path}')
        body = _Tunnel.files.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.send_header('Content-Length', str(len(body or b'')))
        self.end_headers()
        self.wfile.write(body or b'')

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def weights_host(tmp_path):
    """(environment variables that send requests' HTTPS through the proxy and trust its certificate, the proxy's
    record, the served files)."""
    from http.server import ThreadingHTTPServer
    cert, key = tmp_path / 'cert.pem', tmp_path / 'key.pem'
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-keyout', str(key),
                    '-out', str(cert), '-subj', '/CN=shi-labs.com', '-addext', 'subjectAltName=DNS:shi-labs.com'],
                   check=True, capture_output=True, timeout=60)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    _Tunnel.context, _Tunnel.seen, _Tunnel.files = context, [], {}
    server = ThreadingHTTPServer(('127.0.0.1', 0), _Tunnel)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    proxy = f'http://127.0.0.1:{server.server_address[1]}'
    env = {'HTTPS_PROXY': proxy, 'https_proxy': proxy, 'NO_PROXY': '', 'no_proxy': '',
           'REQUESTS_CA_BUNDLE': str(cert)}
    yield env, _Tunnel.seen, _Tunnel.files
    server.shutdown()
    server.server_close()


def test_download_writes_the_config_and_fetches_the_weights(route, weights_host, tmp_path):
    proxy_env, seen, files = weights_host
    official_file('s', tmp_path / 'served.pth')
    files['/projects/convmlp/checkpoints/convmlp_s_imagenet.pth'] = (tmp_path / 'served.pth').read_bytes()
    dest = tmp_path / 'dest'
    mim(dict(route, **proxy_env), tmp_path, 'download', 'convmlp_mm', '--config', 'convmlp-s_in1k', '--dest',
        str(dest))
    assert seen == ['CONNECT shi-labs.com:443', 'GET shi-labs.com/projects/convmlp/checkpoints/convmlp_s_imagenet.pth']
    assert (dest / 'convmlp_s_imagenet.pth').read_bytes() == (tmp_path / 'served.pth').read_bytes()
    from mmengine.config import Config
    cfg = Config.fromfile(dest / 'convmlp-s_in1k.py')
    assert cfg.model.backbone.type.endswith('ConvMLP') and cfg.model.backbone.arch == 's'


def test_train_and_test_run_our_tools(route, toy_cls, tmp_path):
    """`mim train` / `mim test` with the toy classifier's config: from a wheel by its name (mim finds it among the
    package's configs), from the clone by its path."""
    (tmp_path / 'data').mkdir()
    shutil.copytree(toy_cls, tmp_path / 'data' / 'toy_cls')  # the config's data_root, relative to the cwd
    from_wheel = route['CONVMLP_TEST_ROUTE'] == 'wheel'
    config = 'convmlp_s_toy.py' if from_wheel else str(ROOT / 'configs' / 'classification' / 'toy' / 'convmlp_s_toy.py')
    work = tmp_path / 'work'
    short = ['--cfg-options', 'train_cfg.max_epochs=2', 'train_dataloader.batch_size=8']
    train = mim(route, tmp_path, 'train', 'convmlp_mm', config, '--work-dir', str(work), *short)
    tools = Path(route['PYTHONPATH']) / 'convmlp_mm' / '.mim' / 'tools' if from_wheel else None
    command = next(line for line in train.stdout.splitlines() if line.startswith('Training command is'))
    script = Path(command.split()[4])
    assert script.name == 'train.py' and script.resolve().parent == (tools or ROOT / 'tools').resolve(), command
    assert (work / 'epoch_2.pth').is_file()
    test = mim(route, tmp_path, 'test', 'convmlp_mm', config, '--checkpoint', str(work / 'epoch_2.pth'),
               '--work-dir', str(tmp_path / 'test'))
    assert 'accuracy/top1' in test.stdout + test.stderr
