"""The compatibility layer: one module tells the versions apart, and what it offers behaves the same on
every supported torch and numpy (this file runs on every stack of the matrix)."""
import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from convmlp_mm import compat, environment
from convmlp_mm.engine import precision
from convmlp_mm.models import kernels

from .conftest import ROOT

pytestmark = pytest.mark.matrix


def test_version_tuple():
    assert environment.version_tuple('2.1.2+cu121') == (2, 1, 2)
    assert environment.version_tuple('2.0.0rc4') == (2, 0, 0)
    assert environment.version_tuple('0.10.12') == (0, 10, 12)


def test_no_version_probes_outside_the_compatibility_layer():
    """torch/numpy APIs that differ between supported versions are reached only through compat.py (and the
    oneDNN kernel probes only in models/kernels.py)."""
    # (a name inside quotes, such as a pickled global's module, is data, not an API use)
    version_specific = re.compile(r'torch\.compiler\.|torch\.is_autocast_enabled\(|torch\.get_autocast_dtype\(|'
                                  r'torch\.serialization\.|is_bf16_supported|(?<![\w\'"])(np|numpy)\._core|'
                                  r'hasattr\((torch|np)\b|version_tuple\(torch|'
                                  r'(?<![\w\'"])torch\._utils\b|from torch import _utils')
    offenders = []
    for path in sorted((ROOT / 'convmlp_mm').rglob('*.py')) + sorted((ROOT / 'tools').rglob('*.py')):
        if path.relative_to(ROOT).as_posix() in ('convmlp_mm/compat.py', 'convmlp_mm/models/kernels.py'):
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split('#', 1)[0]
            if version_specific.search(code) and 'compat' not in code:
                offenders.append(f'{path.relative_to(ROOT)}:{number}: {line.strip()}')
    assert not offenders, '\n'.join(offenders)


def test_autocast_state_is_read_on_this_torch():
    assert not compat.is_autocast_enabled('cpu')
    with torch.autocast('cpu', dtype=torch.bfloat16):
        assert compat.is_autocast_enabled('cpu')
        assert compat.get_autocast_dtype('cpu') == torch.bfloat16
    assert not compat.is_autocast_enabled('cuda')


def test_graph_capture_is_seen_when_tracing():
    seen = []

    def probe(x):
        seen.append(compat.is_graph_capture(x))
        return x + 1

    probe(torch.ones(1))
    torch.jit.trace(probe, torch.ones(1))
    assert seen[0] is False and seen[1] is True  # (trace then runs it again to check the trace)


def test_numpy_multiarray_is_the_real_module_of_this_numpy():
    module = compat.numpy_multiarray()
    assert module._reconstruct is not None and module.scalar is not None
    expected = 'numpy._core.multiarray' if np.__version__.startswith('2') else 'numpy.core.multiarray'
    assert module.__name__ == expected


@pytest.mark.parametrize('missing, old', [('mmcv', None), (None, ('mmengine', '0.9.1')), (None, ('torch', '2.0.1'))])
def test_missing_or_old_library_is_named_with_the_versions_needed(monkeypatch, missing, old):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, 'find_spec',
                        lambda name, *a: None if name == missing else real_find_spec(name, *a))
    if old:
        module = __import__(old[0])
        monkeypatch.setattr(module, '__version__', old[1])
    with pytest.raises(environment.IncompatibleEnvironmentError) as err:
        environment.check_environment()
    message = str(err.value)
    assert 'torch>=2.1.0, mmengine>=0.10.0 and mmcv>=2.0.0' in message and 'onedl-mmcv' in message
    assert (f'{missing} is not installed' if missing else f'{old[0]} {old[1]} is older than') in message


def test_forked_distribution_names_resolve_their_config_scope(monkeypatch):
    from mmengine.config import utils as config_utils
    mapping = {'mmseg': 'no-such-distribution', 'mmdet': 'mmdet', 'mmnothing': 'mmnothing-dist'}
    monkeypatch.setattr(config_utils, 'MODULE2PACKAGE', mapping)
    compat.resolve_forked_config_packages()
    assert mapping == {'mmseg': 'mmseg', 'mmdet': 'mmdet', 'mmnothing': 'mmnothing-dist'}


def test_segmentation_config_bases_resolve_on_this_stack():
    from mmengine.config import Config
    cfg = Config.fromfile(str(ROOT / 'configs' / 'segmentation' / 'fpn_convmlp_s_ade20k.py'))
    assert cfg.model.backbone.type.endswith('ConvMLP') and cfg.model.decode_head.num_classes == 150


def test_feature_on_a_too_old_torch_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(compat, 'TORCH_VERSION', (2, 1, 2))
    with pytest.raises(compat.UnsupportedTorchError, match=r'ONNX export needs torch >= 2\.6 .* has torch'):
        compat.require_torch((2, 6), 'ONNX export')


def test_bf16_slower_than_fp32_is_said_in_one_line_with_both_rates(monkeypatch):
    monkeypatch.setattr(precision, 'cpu_matmul_rates', lambda: (254.0, 142.0))
    message = precision.bf16_slower_message()
    assert message.startswith('bf16 will be slower than fp32 on this CPU') and '142 GFLOP/s' in message
    assert '254 in fp32' in message and '\n' not in message
    monkeypatch.setattr(precision, 'cpu_matmul_rates', lambda: (306.0, 1738.0))
    assert precision.bf16_slower_message() is None


def test_matmul_rates_are_measured_once_per_process():
    first = kernels.cpu_matmul_rates()
    assert all(rate > 0 for rate in first)
    assert kernels.cpu_matmul_rates() is first


def test_configs_are_found_in_a_clone():
    from convmlp_mm import config_path
    path = Path(config_path('detection/_base_/default_runtime.py'))
    assert path == ROOT / 'configs' / 'detection' / '_base_' / 'default_runtime.py'
    with pytest.raises(FileNotFoundError, match='no config'):
        config_path('detection/nope.py')
