"""torch's weights_only loading reads mmengine's checkpoints once convmlp_mm is imported, and still
refuses checkpoints that would run code."""
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub

import convmlp_mm  # noqa: F401  (installs the allow-list)

from .conftest import RunsCode


def test_mmengine_checkpoint_loads_with_weights_only(tmp_path):
    hub = MessageHub.get_instance('safety-test')
    hub.update_scalar('train/loss', np.float64(0.25))
    hub.update_scalar('train/lr', 1e-3)
    hub.update_info('iter', np.int64(7))
    path = tmp_path / 'epoch_1.pth'
    torch.save({'meta': {'epoch': 1, 'seed': np.int64(3)}, 'state_dict': {'w': torch.ones(2)},
                'message_hub': hub.state_dict()}, path)
    loaded = torch.load(path, map_location='cpu')  # weights_only=True is torch's default here
    buffer = loaded['message_hub']['log_scalars']['train/loss']
    assert isinstance(buffer, HistoryBuffer) and buffer.mean() == 0.25
    assert loaded['meta']['seed'] == 3 and torch.equal(loaded['state_dict']['w'], torch.ones(2))


class _ReachesOtherAttribute:
    def __reduce__(self):
        return getattr, (HistoryBuffer, '__init__')


def test_checkpoint_that_runs_code_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'payload': RunsCode(marker)}, path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, map_location='cpu')
    assert not marker.exists()


def test_getattr_stand_in_only_hands_out_statistics(tmp_path):
    path = tmp_path / 'probe.pth'
    torch.save({'x': _ReachesOtherAttribute()}, path)
    with pytest.raises(pickle.UnpicklingError, match='only HistoryBuffer statistics'):
        torch.load(path, map_location='cpu')
