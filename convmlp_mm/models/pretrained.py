"""Loading pretrained weights into a backbone, loudly.

mmengine's ``PretrainedInit`` loads with ``strict=False`` and only logs what did not fit, so a wrong
file silently leaves a randomly initialised backbone. Here a checkpoint that shares no key with the
module, or has a key of another shape (e.g. ConvMLP-L weights into ConvMLP-S), is an error that names
the keys; missing and unexpected keys are reported by name.
"""
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Tuple
from urllib.error import URLError

import torch
import torch.nn as nn
from mmengine.logging import MMLogger, print_log
from mmengine.runner.checkpoint import CheckpointLoader

from ..checkpoint_safety import UnsafeCheckpointError
from ..errors import UserError

BACKBONE_PREFIX = 'backbone.'


class PretrainedWeightsError(UserError, RuntimeError):
    """A pretrained checkpoint could not be read or does not fit the module."""


def read_checkpoint(filename: str, map_location: str = 'cpu') -> Any:
    """Load a checkpoint file or URL as it is (never running code from it), with errors that say what to do."""
    remote = filename.startswith(('http://', 'https://'))
    try:
        checkpoint = CheckpointLoader.load_checkpoint(filename, map_location=map_location, logger='current')
    except (URLError, ConnectionError, TimeoutError) as err:
        raise PretrainedWeightsError(
            f'Could not download the pretrained weights {filename} ({err}); this machine seems to be '
            f'offline. Download the file where you can and point the config at the local copy, e.g. '
            f"--cfg-options model.backbone.init_cfg.checkpoint=/path/to/{filename.rsplit('/', 1)[-1]}, "
            f'or train from scratch with --cfg-options model.backbone.init_cfg=None') from err
    except FileNotFoundError as err:
        raise PretrainedWeightsError(
            f'Pretrained weights not found: {filename}. Point model.backbone.init_cfg.checkpoint at an '
            f'existing file, or train from scratch with --cfg-options model.backbone.init_cfg=None') from err
    except UnsafeCheckpointError:
        raise  # its message says all there is to say
    except Exception as err:
        if remote:
            raise PretrainedWeightsError(f'Could not load the pretrained weights {filename}: {err}') from err
        raise PretrainedWeightsError(
            f'Could not read the checkpoint {filename}: {type(err).__name__}: {err}') from err
    return checkpoint


def read_state_dict(filename: str, map_location: str = 'cpu') -> Dict[str, torch.Tensor]:
    """Read the tensors of a checkpoint (a plain state_dict, or one under ``state_dict``/``model``)."""
    checkpoint = read_checkpoint(filename, map_location)
    if isinstance(checkpoint, dict):
        for key in ('state_dict', 'model'):
            if isinstance(checkpoint.get(key), dict):
                checkpoint = checkpoint[key]
                break
    if not isinstance(checkpoint, dict) or not all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        raise PretrainedWeightsError(f'{filename} is not a state_dict of tensors (got {type(checkpoint).__name__})')
    return checkpoint


def select_prefix(state_dict: Dict[str, torch.Tensor], prefix: Optional[str],
                  own_keys: List[str], filename: str) -> Dict[str, torch.Tensor]:
    """Keep the keys under ``prefix`` (stripped). Without a prefix, use the keys as they are, or the
    ``backbone.`` sub-tree of a detector/segmentor/classifier checkpoint when only that one fits."""
    def strip(p: str) -> Dict[str, torch.Tensor]:
        return OrderedDict((k[len(p):], v) for k, v in state_dict.items() if k.startswith(p))

    if prefix:
        prefix = prefix if prefix.endswith('.') else prefix + '.'
        selected = strip(prefix)
        if not selected:
            raise PretrainedWeightsError(f'No key of {filename} starts with the prefix {prefix!r}; its keys '
                                         f'start like {sorted(state_dict)[:5]}')
        return selected
    own = set(own_keys)
    if not own.intersection(state_dict):
        under_backbone = strip(BACKBONE_PREFIX)
        if own.intersection(under_backbone):
            return under_backbone
    return state_dict


def load_pretrained(module: nn.Module, filename: str, prefix: Optional[str] = None,
                    map_location: str = 'cpu') -> Tuple[List[str], List[str]]:
    """Load ``filename`` into ``module``; return the (missing, unexpected) keys, which are also logged.

    Raises:
        PretrainedWeightsError: the file cannot be read, shares no key with ``module``, or has keys
            whose shapes differ from the module's.
    """
    own = module.state_dict()
    state_dict = select_prefix(read_state_dict(filename, map_location), prefix, list(own), filename)
    matched = [k for k in state_dict if k in own]
    if not matched:
        raise PretrainedWeightsError(
            f'{filename} shares no parameter name with {type(module).__name__}: it is not a checkpoint for '
            f'this model (its keys start like {sorted(state_dict)[:5]}, the model expects keys like '
            f'{list(own)[:5]}). Set init_cfg.prefix if the weights sit under another prefix.')
    mismatched = [f'{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}'
                  for k in matched if state_dict[k].shape != own[k].shape]
    if mismatched:
        raise PretrainedWeightsError(
            f'{filename} does not fit {type(module).__name__} (is it another variant, e.g. ConvMLP-L for '
            f'ConvMLP-S?); {len(mismatched)} shape mismatch(es):\n  ' + '\n  '.join(mismatched))
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    module.load_state_dict(OrderedDict((k, state_dict[k]) for k in matched), strict=False)
    logger = MMLogger.get_current_instance()
    print_log(f'Loaded {len(matched)}/{len(own)} tensors of {type(module).__name__} from {filename}',
              logger=logger)
    if missing:
        print_log(f'Keys missing from {filename} (left at their initialization): {missing}',
                  logger=logger, level=30)
    if unexpected:
        print_log(f'Keys of {filename} not used by {type(module).__name__}: {unexpected}', logger=logger,
                  level=30)
    return missing, unexpected
