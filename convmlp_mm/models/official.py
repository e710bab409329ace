"""The official ConvMLP ImageNet checkpoints (``convmlp_{s,m,l}_imagenet.pth``): recognising them and
converting them to OpenMMLab checkpoints.

An official file is a plain state_dict of the paper's classifier: the backbone's keys as
:class:`~convmlp_mm.ConvMLP` names them, the final LayerNorm ``norm.*`` and the linear ``head.*``.
"""
from collections import OrderedDict
from typing import Dict

import torch

from .backbones import ConvMLP

HEAD_KEYS = ('head.weight', 'head.bias')


class NotConvMLPCheckpointError(ValueError):
    """The file is not an official ConvMLP classifier checkpoint."""


def _expected_shapes(arch: str) -> Dict[str, torch.Size]:
    return {k: v.shape for k, v in ConvMLP(arch=arch, final_norm=True).state_dict().items()}


def detect_arch(state_dict: Dict[str, torch.Tensor], name: str = 'checkpoint') -> str:
    """Which variant (``'s'``, ``'m'`` or ``'l'``) an official state_dict holds; raise if none fits."""
    missing_head = [k for k in HEAD_KEYS if k not in state_dict]
    if any(k.startswith('backbone.') for k in state_dict):
        raise NotConvMLPCheckpointError(f'{name} has "backbone." keys: it is an OpenMMLab checkpoint already '
                                        f'(converted or trained here), not an official ConvMLP file')
    if 'tokenizer.block.0.weight' not in state_dict or missing_head:
        raise NotConvMLPCheckpointError(
            f'{name} is not a ConvMLP checkpoint: it lacks tokenizer.block.0.weight and/or {missing_head} '
            f'(its keys start like {sorted(state_dict)[:5]})')
    body = {k: v.shape for k, v in state_dict.items() if k not in HEAD_KEYS}
    report = []
    for arch in ConvMLP.arch_settings:
        expected = _expected_shapes(arch)
        if body == expected and state_dict['head.weight'].shape[1] == expected['norm.weight'][0]:
            return arch
        wrong = sorted(set(body) ^ set(expected)) + sorted(
            k for k in set(body) & set(expected) if body[k] != expected[k])
        report.append(f'{arch}: {len(wrong)} differing keys, e.g. {wrong[:3]}')
    raise NotConvMLPCheckpointError(f'{name} looks like ConvMLP but matches none of the variants: '
                                    + '; '.join(report))


def to_classifier(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Keys of mmpretrain's ``ImageClassifier`` (ConvMLP backbone with ``final_norm``, LinearClsHead)."""
    return OrderedDict((f'head.fc.{k[5:]}' if k in HEAD_KEYS else f'backbone.{k}', v)
                       for k, v in state_dict.items())


def to_backbone(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """The dense backbone's keys only (no final norm, no head), for detection/segmentation ``init_cfg``."""
    return OrderedDict((k, v) for k, v in state_dict.items()
                       if k not in HEAD_KEYS and not k.startswith('norm.'))
