"""Checkpoints load through mmengine's own loaders without ever running code from them, on every torch:
mmengine's checkpoints (message hub, numpy values) load, a file that would run code is refused with one
message naming what it refers to, and its payload never runs."""
import functools
import http.server
import io
import threading

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.runner import CheckpointLoader, load_checkpoint
from mmengine.runner.checkpoint import _load_checkpoint

import convmlp_mm  # noqa: F401  (makes the restricted loader mmengine's)
from convmlp_mm.checkpoint_safety import UnsafeCheckpointError, load_checkpoint_file, unsafe_globals

from .conftest import RunsCode

pytestmark = pytest.mark.matrix


def mmengine_checkpoint(path, legacy_format=False):
    """What mmengine's Runner writes: meta with numpy scalars, a message hub of HistoryBuffers, weights."""
    hub = MessageHub.get_instance(f'safety-test-{path.name}')
    hub.update_scalar('train/loss', np.float64(0.25))
    hub.update_scalar('train/lr', 1e-3)
    hub.update_info('iter', np.int64(7))
    torch.save({'meta': {'epoch': 1, 'seed': np.int64(3), 'hist': np.arange(3.0)},
                'state_dict': {'weight': torch.ones(2, 1), 'bias': torch.zeros(2)},
                'message_hub': hub.state_dict()}, path, _use_new_zipfile_serialization=not legacy_format)
    return path


@pytest.mark.parametrize('legacy_format', [False, True], ids=['zip', 'legacy'])
@pytest.mark.parametrize('door', ['CheckpointLoader', '_load_checkpoint'])
def test_mmengine_checkpoint_loads_through_mmengine(door, legacy_format, tmp_path):
    path = mmengine_checkpoint(tmp_path / 'epoch_1.pth', legacy_format)
    load = CheckpointLoader.load_checkpoint if door == 'CheckpointLoader' else _load_checkpoint
    loaded = load(str(path), map_location='cpu')
    buffer = loaded['message_hub']['log_scalars']['train/loss']
    assert isinstance(buffer, HistoryBuffer) and buffer.mean() == 0.25
    assert loaded['meta']['seed'] == 3 and np.array_equal(loaded['meta']['hist'], np.arange(3.0))
    assert torch.equal(loaded['state_dict']['weight'], torch.ones(2, 1))


def test_load_checkpoint_into_a_model(tmp_path):
    path = mmengine_checkpoint(tmp_path / 'epoch_1.pth')
    model = nn.Linear(1, 2)
    load_checkpoint(model, str(path), map_location='cpu')
    assert torch.equal(model.weight.detach().flatten(), torch.ones(2))


@pytest.mark.parametrize('legacy_format', [False, True], ids=['zip', 'legacy'])
@pytest.mark.parametrize('door', ['load_checkpoint', '_load_checkpoint', 'load_checkpoint_file'])
def test_checkpoint_that_runs_code_is_refused_and_nothing_runs(door, legacy_format, tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {'weight': torch.ones(2)}, 'payload': RunsCode(marker)}, path,
               _use_new_zipfile_serialization=not legacy_format)
    with pytest.raises(UnsafeCheckpointError, match='was not loaded') as err:
        if door == 'load_checkpoint':
            load_checkpoint(nn.Linear(1, 2), str(path), map_location='cpu')
        elif door == '_load_checkpoint':
            _load_checkpoint(str(path), map_location='cpu')
        else:
            load_checkpoint_file(str(path))
    assert not marker.exists()
    assert 'weights_only=False' not in str(err.value)
    if not legacy_format:  # the dry pass names the global (legacy files are refused without the list)
        assert 'pathlib.Path.touch' in str(err.value) or 'pathlib' in str(err.value)


def test_unsafe_globals_are_listed_without_running_them(tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save({'a': RunsCode(marker), 'b': torch.ones(1)}, path)
    names = unsafe_globals(path)
    assert any(name.startswith('pathlib') for name in names), names
    assert not marker.exists()


class _ReachesOtherAttribute:
    def __reduce__(self):
        return getattr, (HistoryBuffer, '__init__')


def test_getattr_stand_in_only_hands_out_statistics(tmp_path):
    path = tmp_path / 'probe.pth'
    torch.save({'x': _ReachesOtherAttribute()}, path)
    with pytest.raises(UnsafeCheckpointError, match='only HistoryBuffer statistics'):
        load_checkpoint_file(path)


@pytest.mark.parametrize('written_by', ['numpy 1', 'numpy 2'])
def test_arrays_written_by_either_numpy_load(written_by):
    buffer = io.BytesIO()
    torch.save({'array': np.ones(3), 'scalar': np.float32(2)}, buffer, _use_new_zipfile_serialization=False)
    # protocol 2 names globals as text lines, so the other numpy's module name can be written in directly
    raw = buffer.getvalue()
    for old, new in ((b'numpy._core.multiarray', b'numpy.core.multiarray'),
                     (b'numpy.core.multiarray', b'numpy._core.multiarray')):
        raw = raw.replace(old, b'@NUMPY@')
    module = b'numpy.core.multiarray' if written_by == 'numpy 1' else b'numpy._core.multiarray'
    loaded = load_checkpoint_file(io.BytesIO(raw.replace(b'@NUMPY@', module)))
    assert np.array_equal(loaded['array'], np.ones(3)) and loaded['scalar'] == 2


def test_http_checkpoint_is_downloaded_once_and_loaded_safely(tmp_path, monkeypatch):
    served = tmp_path / 'served'
    served.mkdir()
    mmengine_checkpoint(served / 'good.pth')
    marker = tmp_path / 'pwned'
    torch.save({'payload': RunsCode(marker)}, served / 'evil.pth')
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'hub'))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f'http://127.0.0.1:{server.server_address[1]}'
        loaded = CheckpointLoader.load_checkpoint(f'{url}/good.pth', map_location='cpu')
        assert torch.equal(loaded['state_dict']['weight'], torch.ones(2, 1))
        assert (tmp_path / 'hub' / 'checkpoints' / 'good.pth').is_file()
        with pytest.raises(UnsafeCheckpointError):
            CheckpointLoader.load_checkpoint(f'{url}/evil.pth', map_location='cpu')
        assert not marker.exists()
    finally:
        server.shutdown()
