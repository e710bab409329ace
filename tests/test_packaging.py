"""What `pip install .` (a wheel) gives a user: the package with its configs, metadata that forces no
distribution a fork also provides, and configs that load from the installed copy."""
import os
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

from .conftest import ROOT


def test_wheel_carries_every_config_and_the_model_index(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    configs = {str(p.relative_to(ROOT)) for p in (ROOT / 'configs').rglob('*.py')}
    missing = {c for c in configs if f'convmlp_mm/.mim/{c}' not in names}
    assert len(configs) > 30 and not missing, sorted(missing)[:5]
    # mim's search reads the model index and every metafile it imports
    index = (ROOT / 'model-index.yml').read_text()
    metafiles = [line.split('- ', 1)[1].strip() for line in index.splitlines() if line.strip().startswith('- ')]
    assert len(metafiles) == 3 and 'convmlp_mm/.mim/model-index.yml' in names
    assert [f'convmlp_mm/.mim/{m}' in names for m in metafiles] == [True] * 3, metafiles
    # `mim train` / `mim test` run the package's own tools
    assert {'convmlp_mm/.mim/tools/train.py', 'convmlp_mm/.mim/tools/test.py'} <= names


def test_wheel_forces_no_library_a_fork_provides(wheel):
    with zipfile.ZipFile(wheel) as archive:
        metadata = archive.read(next(n for n in archive.namelist() if n.endswith('METADATA'))).decode()
    message = Parser().parsestr(metadata)
    required = [r for r in message.get_all('Requires-Dist') or [] if 'extra ==' not in r]
    assert not [r for r in required if r.split()[0].split(';')[0] in ('torch', 'mmcv', 'mmengine', 'mmcv-lite')]
    # Python 3.8 (torch 2.1's and mmdet 3.3's floor) to 3.13, each run by a stack of the matrix.
    assert message['Requires-Python'] == '>=3.8'
    classifiers = message.get_all('Classifier')
    assert [f'Programming Language :: Python :: 3.{minor}' in classifiers for minor in range(8, 14)] == [True] * 6


@pytest.mark.matrix
def test_installed_wheel_loads_its_own_configs(wheel, tmp_path):
    """On every stack's Python (3.8 to 3.13): pip accepts the wheel (it checks Requires-Python) and the installed
    copy finds its own configs."""
    target = tmp_path / 'site'
    subprocess.run([sys.executable, '-m', 'pip', 'install', '--no-deps', '-q', '--target', str(target), str(wheel)],
                   check=True, capture_output=True, text=True, timeout=600)
    script = (
        'import convmlp_mm\n'
        'from mmengine.config import Config\n'
        "path = convmlp_mm.config_path('detection/retinanet_convmlp_s_fpn.py')\n"
        'cfg = Config.fromfile(path)\n'
        "runtime = convmlp_mm.config_path('detection/_base_/default_runtime.py')\n"
        'print(convmlp_mm.__file__, path, cfg.model.backbone.type, runtime)\n')
    proc = subprocess.run([sys.executable, '-c', script], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(target)))
    assert proc.returncode == 0, proc.stderr[-2000:]
    package, config, backbone, runtime = proc.stdout.split()
    assert target in Path(package).parents and target / 'convmlp_mm' / '.mim' in Path(config).parents
    assert backbone.endswith('ConvMLP') and Path(runtime).is_file()
