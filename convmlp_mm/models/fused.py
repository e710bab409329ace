"""The inference form of ConvMLP's layers: the folding maths, and the fused modules a deployed backbone holds.

Two places use them. A backbone built with ``deploy=True`` (or after ``switch_to_deploy()``) holds
:class:`ConvReLU` and :class:`ResidualChannelMLP` modules with the folded weights, which a checkpoint saves
and loads like any others. A backbone in the training structure folds the same weights on the fly in eval
mode (:func:`run_folded`): the work is per weight, not per activation, and nothing is kept between calls.
"""
from typing import Iterable, List, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from torch.nn.modules.batchnorm import _BatchNorm

from .kernels import conv_relu, conv_relu_nchw, layer_norm, mlp_residual


class FoldError(ValueError):
    """A norm layer that cannot be folded into the layer before it."""


def conv_norm_relu(shapes: Iterable[Tuple[int, int, int, int]], norm_cfg: dict) -> List[nn.Module]:
    """The training structure of the conv parts: a bias-free conv, a norm layer and a ReLU for each
    ``(in_channels, out_channels, kernel_size, stride)``, as the official checkpoints name them (flat, in a
    ``Sequential``). :func:`run_folded` and :func:`fuse_sequence` read a ``Sequential`` that starts with these
    triples."""
    layers: List[nn.Module] = []
    for cin, cout, kernel, stride in shapes:
        layers += [nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False),
                   build_norm_layer(norm_cfg, cout)[1], nn.ReLU(inplace=True)]
    return layers


def foldable(norm: nn.Module) -> bool:
    """Whether a norm layer of the conv parts folds into its conv: a BatchNorm (or SyncBN) with running
    statistics, whose eval-mode output is an affine map of each channel, or the ``Identity`` that mmcv's
    ``fuse_conv_bn`` (mmdet's ``benchmark.py --fuse-conv-bn``) leaves after folding it already."""
    return isinstance(norm, nn.Identity) or (isinstance(norm, _BatchNorm) and norm.running_var is not None)


def fold_conv_bn(conv: nn.Conv2d, bn: nn.Module) -> Tuple[torch.Tensor, torch.Tensor]:
    """The weight and bias of one conv equal to ``bn(conv(x))`` in eval mode:
    ``W' = W * s``, ``b' = (b - mean) * s + beta`` with ``s = gamma / sqrt(var + eps)``; ``bn`` may be
    an ``Identity`` that stands for a BatchNorm folded already (see :func:`foldable`). The weight keeps the
    memory layout of the conv's."""
    if isinstance(bn, nn.Identity):
        bias = conv.bias if conv.bias is not None else conv.weight.new_zeros(conv.out_channels)
        return conv.weight, bias
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight
    bias = -bn.running_mean * scale
    if conv.bias is not None:
        bias = bias + conv.bias * scale
    if bn.bias is not None:
        bias = bias + bn.bias
    return conv.weight * scale.reshape(-1, 1, 1, 1), bias


def fold_layer_norm_affine(norm: nn.LayerNorm, fc: nn.Linear) -> Tuple[torch.Tensor, torch.Tensor]:
    """The weight and bias of ``fc`` after absorbing ``norm``'s affine part:
    ``fc(gamma * z + beta) = (W * gamma) z + (W beta + b)``."""
    if not norm.elementwise_affine:
        return fc.weight, fc.bias
    return fc.weight * norm.weight, fc.bias + fc.weight @ norm.bias


def _triples(layers: nn.Sequential) -> int:
    """How many leading modules of a :func:`conv_norm_relu` sequence are conv-norm-ReLU triples."""
    return len(layers) - len(layers) % 3


def all_foldable(layers: nn.Sequential) -> bool:
    """Whether every norm of a :func:`conv_norm_relu` sequence folds (:func:`foldable`)."""
    return all(foldable(layers[i + 1]) for i in range(0, _triples(layers), 3))


def run_folded(layers: nn.Sequential, x: torch.Tensor, fuse: bool) -> torch.Tensor:
    """``layers(x)`` in eval mode, each conv-BN-ReLU triple as one conv (the BatchNorm folded in for this call)
    followed by a ReLU, one oneDNN op with ``fuse``. Norms that do not fold (e.g. GroupNorm) run as built."""
    end = _triples(layers)
    if not all_foldable(layers):
        return layers(x)
    for i in range(0, end, 3):
        conv = layers[i]
        x = conv_relu(x, conv, *fold_conv_bn(conv, layers[i + 1]), fuse)
    for layer in layers[end:]:
        x = layer(x)
    return x


class ConvReLU(nn.Conv2d):
    """A conv with a bias and a ReLU after it: a conv-BN-ReLU layer of the conv parts with the BatchNorm
    folded in. In CPU inference it runs as one oneDNN convolution with a ReLU post-op."""

    def forward(self, x: torch.Tensor, fuse: bool = False) -> torch.Tensor:
        return conv_relu(x, self, self.weight, self.bias, fuse)

    @classmethod
    @torch.no_grad()
    def from_conv_bn(cls, conv: nn.Conv2d, norm: nn.Module) -> 'ConvReLU':
        if not foldable(norm):
            raise FoldError(f'cannot fold {type(norm).__name__} into a conv: deploy folds BatchNorms with running '
                            f"statistics (norm_cfg type 'BN' or 'SyncBN'); build the backbone without deploy")
        fused = cls(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride, padding=conv.padding,
                    dilation=conv.dilation, groups=conv.groups, bias=True, padding_mode=conv.padding_mode,
                    device=conv.weight.device, dtype=conv.weight.dtype)
        weight, bias = fold_conv_bn(conv, norm)
        fused.weight.data = weight.clone()  # in the layout of the conv's weight (ConvMLP may keep channels-last)
        fused.bias.copy_(bias)
        return fused


def fuse_sequence(layers: nn.Sequential) -> nn.Sequential:
    """The deploy form of a :func:`conv_norm_relu` sequence: a :class:`ConvReLU` per triple, then the rest."""
    end = _triples(layers)
    fused = [ConvReLU.from_conv_bn(layers[i], layers[i + 1]) for i in range(0, end, 3)]
    return nn.Sequential(*fused, *layers[end:])


def deploy_sequence(shapes: Iterable[Tuple[int, int, int, int]]) -> List[nn.Module]:
    """The deploy form of ``conv_norm_relu(shapes, ...)``, built directly (``deploy=True``)."""
    return [ConvReLU(cin, cout, kernel, stride=stride, padding=kernel // 2) for cin, cout, kernel, stride in shapes]


def run_fused(layers: nn.Sequential, x: torch.Tensor, fuse: bool) -> torch.Tensor:
    """A deploy-form sequence on ``x``."""
    for layer in layers:
        x = layer(x, fuse) if isinstance(layer, ConvReLU) else layer(x)
    return x


def run_bottleneck_nchw(layers: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """``x + layers(x)`` for a bottleneck of conv-ReLUs (deploy form) or conv-BN-ReLU triples (training form,
    every norm foldable) on NCHW memory, each conv by :func:`~convmlp_mm.models.kernels.conv_relu_nchw`. The sum
    is taken in place in the block's output, which nothing else holds."""
    out = x
    if isinstance(layers[0], ConvReLU):
        for layer in layers:
            out = conv_relu_nchw(out, layer, layer.weight, layer.bias)
    else:
        for i in range(0, _triples(layers), 3):
            out = conv_relu_nchw(out, layers[i], *fold_conv_bn(layers[i], layers[i + 1]))
    return out.add_(x)


class ResidualChannelMLP(nn.Module):
    """``x + fc2(gelu(fc1(norm(x))))``: a LayerNorm and channel MLP of a ConvMLP block with the norm's affine
    folded into ``fc1``. In CPU inference the two linear layers run as fused oneDNN kernels (bias, GELU and
    the residual add inside the matmuls)."""

    def __init__(self, channels: int, hidden: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels, eps=eps, elementwise_affine=False)
        self.fc1 = nn.Linear(channels, hidden)
        self.fc2 = nn.Linear(hidden, channels)

    def forward(self, x: torch.Tensor, fuse: bool = False) -> torch.Tensor:
        return mlp_residual(x, layer_norm(x, self.norm), self.fc1, self.fc2, fuse)

    @classmethod
    @torch.no_grad()
    def from_norm_mlp(cls, norm: nn.LayerNorm, fc1: nn.Linear, fc2: nn.Linear) -> 'ResidualChannelMLP':
        fused = cls(fc1.in_features, fc1.out_features, norm.eps).to(fc1.weight.device, fc1.weight.dtype)
        weight, bias = fold_layer_norm_affine(norm, fc1)
        fused.fc1.weight.copy_(weight)
        fused.fc1.bias.copy_(bias)
        fused.fc2.load_state_dict(fc2.state_dict())
        return fused
