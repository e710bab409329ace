"""Building a model from one of our configs and loading a checkpoint into it, the way mmdet's
``init_detector`` does: one place that the tools, the export and the tests share.

Loading goes through mmengine's loader, which ``import convmlp_mm`` made safe (:mod:`convmlp_mm.checkpoint_safety`).
"""
from pathlib import Path
from typing import Optional, Union

import torch.nn as nn
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.runner.checkpoint import _load_checkpoint

from .errors import UserError
from .fileio import replace_atomically


class CheckpointMismatchError(UserError, ValueError):
    """The checkpoint's weights do not fit the config's model (other keys or other shapes)."""


def build_from_config(config: Union[str, Path, Config], **backbone_args) -> nn.Module:
    """The model of a config (a file path or a loaded ``Config``) with the paper's initialization (the
    backbone's ``init_cfg`` dropped, so nothing is downloaded), built in the config's default scope;
    ``backbone_args`` override the backbone's arguments."""
    from mmengine.registry import MODELS, DefaultScope

    cfg = Config.fromfile(config) if isinstance(config, (str, Path)) else config.copy()
    cfg.model.backbone.init_cfg = None
    cfg.model.backbone.update(backbone_args)
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope')):
        model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def init_model(config: Union[str, Config], checkpoint: Optional[str] = None) -> nn.Module:
    """The model of ``config`` (a path or a loaded Config) in eval mode with ``checkpoint``'s weights, which
    must fit it exactly."""
    model = revert_sync_batchnorm(build_from_config(config))
    if checkpoint:
        state = _load_checkpoint(checkpoint, map_location='cpu')
        state = state.get('state_dict', state)
        state = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}
        own = model.state_dict()
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        reshaped = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
        if missing or unexpected or reshaped:
            problems = [f'{len(keys)} {what} (e.g. {", ".join(keys[:3])})' for what, keys in
                        (('keys missing', missing), ('unexpected keys', unexpected),
                         ('tensors of another shape', reshaped)) if keys]
            name = config.filename if isinstance(config, Config) else config
            raise CheckpointMismatchError(f'{checkpoint} does not fit the model of {name}: '
                                          + '; '.join(problems) + '. Pass the config the checkpoint was trained with.')
        model.load_state_dict(state)
    return model.eval()


class AlreadyDeployedError(UserError, ValueError):
    """The checkpoint holds a backbone in its deployed form already."""


def deploy_config_of(config: Union[str, Path]) -> Optional[Path]:
    """The deploy config beside ``config`` (``<task>/deploy/<name>_deploy.py``), if there is one."""
    config = Path(config)
    candidate = config.parent / 'deploy' / f'{config.stem}_deploy.py'
    return candidate if candidate.is_file() else None


def reparameterize(config: Union[str, Path], checkpoint: str, out: Union[str, Path]) -> Path:
    """Write ``out``: ``checkpoint`` (trained with ``config``) with the backbone in its deployed structure
    (``switch_to_deploy()``), loadable strictly by the same config with ``model.backbone.deploy=True``. The
    checkpoint's ``meta`` (class names, palette) is kept; ``out`` appears only when complete."""
    import torch

    out = Path(out)
    if out.resolve() == Path(checkpoint).resolve():
        raise UserError(f'{out} is the checkpoint being converted; write the deployed one to another file')
    cfg = Config.fromfile(config)
    if cfg.model.backbone.get('deploy'):
        raise AlreadyDeployedError(f'{config} builds the deployed backbone (deploy=True) already; pass the config '
                                   f'the checkpoint was trained with')
    model = init_model(cfg, checkpoint)
    backbone = model.backbone
    if not hasattr(backbone, 'switch_to_deploy'):
        raise UserError(f'the backbone of {config} ({type(backbone).__name__}) has no deployed form')
    backbone.switch_to_deploy()
    meta = dict(_load_checkpoint(checkpoint, map_location='cpu').get('meta') or {})
    meta.update(deploy=True, converted_from=Path(checkpoint).name)
    replace_atomically(lambda tmp: torch.save(dict(meta=meta, state_dict=model.state_dict()), tmp), out)
    return out
