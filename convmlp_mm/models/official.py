"""The official ConvMLP classifier checkpoints: recognising them and converting them to OpenMMLab checkpoints.

The released files (``convmlp_{s,m,l}_imagenet.pth`` and the fine-tuned ``convmlp_{s,m,l}_{cifar10,cifar100,
flowers102}.pth``) are plain state_dicts of the paper's classifier: the backbone's keys as
:class:`~convmlp_mm.ConvMLP` names them, the final LayerNorm ``norm.*`` and the linear ``head.*`` (1000, 10,
100 or 102 classes). The official code trains with timm, whose training checkpoints hold the same keys under
``state_dict`` (and ``state_dict_ema`` for runs with a model EMA) beside the optimizer state and the run's
arguments as an ``argparse.Namespace``.
"""
from collections import OrderedDict
from typing import Dict, Optional, Tuple

import torch

from ..errors import UserError
from .backbones import ConvMLP
from .pretrained import read_checkpoint

HEAD_KEYS = ('head.weight', 'head.bias')
#: Head size -> the dataset of our config for it (``configs/classification/convmlp_{arch}_{dataset}.py``) and
#: its name, for the data sets the paper trains or fine-tunes on.
DATASETS = {1000: ('in1k', 'ImageNet-1k'), 10: ('cifar10', 'CIFAR-10'), 100: ('cifar100', 'CIFAR-100'),
            102: ('flowers102', 'Flowers-102')}


class NotConvMLPCheckpointError(UserError, ValueError):
    """The file is not an official ConvMLP classifier checkpoint."""


def _expected_shapes(arch: str) -> Dict[str, torch.Size]:
    return {k: v.shape for k, v in ConvMLP(arch=arch, final_norm=True).state_dict().items()}


def read_official(filename: str, ema: bool = False) -> Tuple[Dict[str, torch.Tensor], str]:
    """The classifier state_dict of an official file, and a line saying what the file was.

    Takes a released (plain) state_dict or a timm training checkpoint; of the latter, ``ema`` picks the
    EMA weights (``state_dict_ema``) instead of the trained ones. Loaded without running code
    (:mod:`convmlp_mm.checkpoint_safety`, whose allow-list has the ``argparse.Namespace`` of timm's
    checkpoints: it holds plain values).
    """
    checkpoint = read_checkpoint(filename)
    if not isinstance(checkpoint, dict):
        raise NotConvMLPCheckpointError(f'{filename} holds a {type(checkpoint).__name__}, not a state_dict')
    if 'state_dict' not in checkpoint:
        if ema:
            raise NotConvMLPCheckpointError(f'--ema: {filename} is a plain state_dict (released weights), not a '
                                            f'timm training checkpoint with EMA weights; drop --ema')
        return checkpoint, 'released weights (a plain state_dict)'
    has_ema = isinstance(checkpoint.get('state_dict_ema'), dict)
    if ema and not has_ema:
        raise NotConvMLPCheckpointError(f'--ema: {filename} has no state_dict_ema (the run had no model EMA); '
                                        f'drop --ema to convert its trained weights')
    state_dict = checkpoint['state_dict_ema' if ema else 'state_dict']
    # weights saved from a DistributedDataParallel model without unwrapping it
    state_dict = OrderedDict((k[7:] if k.startswith('module.') else k, v) for k, v in state_dict.items())
    args = checkpoint.get('args')
    about = [f'epoch {checkpoint["epoch"]}' if 'epoch' in checkpoint else None,
             f'model {args.model}' if getattr(args, 'model', None) else None]
    what = 'its EMA weights (state_dict_ema)' if ema else 'its trained weights (state_dict)'
    if has_ema and not ema:
        what += '; it also holds EMA weights, which --ema converts instead'
    return state_dict, f'timm training checkpoint ({", ".join(a for a in about if a)}), {what}'


def dataset_of(state_dict: Dict[str, torch.Tensor]) -> Tuple[int, Optional[str], Optional[str]]:
    """(number of classes, our config's dataset key, dataset name) of a classifier state_dict's head;
    the key and name are None for a head that fits none of the paper's data sets."""
    num_classes = state_dict['head.weight'].shape[0]
    key, name = DATASETS.get(num_classes, (None, None))
    return num_classes, key, name


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
