"""ConvMLP backbone: "ConvMLP: Hierarchical Convolutional MLPs for Vision" (Li et al., 2021).

Module and parameter names follow the official ImageNet checkpoints
(``convmlp_{s,m,l}_imagenet.pth``), so those files load into this backbone without any key conversion.
"""
import functools
import inspect
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmcv.cnn.bricks import DropPath
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from ...compat import get_autocast_dtype, is_autocast_enabled, is_graph_capture
from ...registry import register_model
from ..fused import (
    ResidualChannelMLP,
    all_foldable,
    conv_norm_relu,
    deploy_sequence,
    fuse_sequence,
    run_bottleneck_nchw,
    run_folded,
    run_fused,
)
from ..kernels import conv2d, layer_norm, mlp_residual, onednn_fusable, winograd_applies
from ..pretrained import load_pretrained

ARCH_KEYS = ('blocks', 'dims', 'mlp_ratios', 'channels', 'n_conv_blocks')


class ConvTokenizer(nn.Module):
    """Three 3x3 conv-norm-ReLU layers (the first with stride 2) and a stride-2 max-pool: stride 4.
    ``block`` in the training structure, ``fused_block`` (conv-ReLUs, BatchNorms folded in) when deployed."""

    def __init__(self, in_channels: int, channels: int, norm_cfg: dict, deploy: bool = False) -> None:
        super().__init__()
        half = channels // 2
        shapes = [(in_channels, half, 3, 2), (half, half, 3, 1), (half, channels, 3, 1)]
        self.deploy = deploy
        pool = nn.MaxPool2d(3, stride=2, padding=1)
        if deploy:
            self.fused_block = nn.Sequential(*deploy_sequence(shapes), pool)
        else:
            self.block = nn.Sequential(*conv_norm_relu(shapes, norm_cfg), pool)

    def forward(self, x: torch.Tensor, fold: bool = False, fuse: bool = False) -> torch.Tensor:
        if self.deploy:
            return run_fused(self.fused_block, x, fuse)
        return run_folded(self.block, x, fuse) if fold else self.block(x)

    def switch_to_deploy(self) -> None:
        self.fused_block = fuse_sequence(self.block)
        del self.block
        self.deploy = True


class ConvStage(nn.Module):
    """``num_blocks`` residual bottlenecks (1x1 -> 3x3 -> 1x1 conv-norm-ReLU layers), then a stride-2 3x3 conv.
    ``conv_blocks`` in the training structure, ``fused_conv_blocks`` (conv-ReLUs) when deployed."""

    def __init__(self, num_blocks: int, channels: int, hidden: int, out_channels: int,
                 norm_cfg: dict, with_cp: bool, deploy: bool = False) -> None:
        super().__init__()
        self.with_cp = with_cp
        self.deploy = deploy
        shapes = [(channels, hidden, 1, 1), (hidden, hidden, 3, 1), (hidden, channels, 1, 1)]
        if deploy:
            self.fused_conv_blocks = nn.ModuleList(nn.Sequential(*deploy_sequence(shapes)) for _ in range(num_blocks))
        else:
            self.conv_blocks = nn.ModuleList(nn.Sequential(*conv_norm_relu(shapes, norm_cfg))
                                             for _ in range(num_blocks))
        self.downsample = nn.Conv2d(channels, out_channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor, fold: bool = False, fuse: bool = False) -> torch.Tensor:
        if (self.deploy or fold) and self.runs_winograd(x, fuse):
            x = x.contiguous()  # NCHW, which NNPACK reads (ConvMLP._forward hands it over so already)
            for block in (self.fused_conv_blocks if self.deploy else self.conv_blocks):
                x = run_bottleneck_nchw(block, x)
            return conv2d(x, self.downsample)
        if self.deploy:
            for block in self.fused_conv_blocks:
                x = x + run_fused(block, x, fuse)
        elif fold:
            for block in self.conv_blocks:
                x = x + run_folded(block, x, fuse)
        else:
            for block in self.conv_blocks:
                x = x + _maybe_checkpoint(block, x, self.with_cp)
            return self.downsample(x)
        return conv2d(x, self.downsample)

    def runs_winograd(self, x: torch.Tensor, fuse: bool) -> bool:
        """Whether the inference form runs on ``x`` in NCHW memory, its 3x3 convs through NNPACK's Winograd
        convolution (:func:`~convmlp_mm.models.kernels.winograd_applies`; the norms must fold)."""
        return winograd_applies(x, fuse) and (self.deploy or all(map(all_foldable, self.conv_blocks)))

    def switch_to_deploy(self) -> None:
        self.fused_conv_blocks = nn.ModuleList(fuse_sequence(block) for block in self.conv_blocks)
        del self.conv_blocks
        self.deploy = True


class ChannelMLP(nn.Module):
    """Linear -> GELU -> Linear over the last (channel) dimension."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class ConvMLPBlock(nn.Module):
    """One ConvMLP block on channels-last (N, H, W, C) tokens.

    LayerNorm -> channel MLP -> residual; LayerNorm -> depthwise 3x3 conv (no residual, as in the
    paper); LayerNorm -> channel MLP -> residual. Stochastic depth applies to the two residual branches.
    When deployed, each norm and channel MLP pair is a :class:`ResidualChannelMLP` (``fused_mlp1``/``2``).
    """

    def __init__(self, channels: int, hidden: int, drop_path: float, deploy: bool = False) -> None:
        super().__init__()
        self.deploy = deploy
        if deploy:
            self.fused_mlp1 = ResidualChannelMLP(channels, hidden)
        else:
            self.norm1 = nn.LayerNorm(channels)
            self.channel_mlp1 = ChannelMLP(channels, hidden)
            self.norm2 = nn.LayerNorm(channels)
        self.connect = nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False)
        self.connect_norm = nn.LayerNorm(channels)
        if deploy:
            self.fused_mlp2 = ResidualChannelMLP(channels, hidden)
        else:
            self.channel_mlp2 = ChannelMLP(channels, hidden)
            self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, fold: bool = False, fuse: bool = False) -> torch.Tensor:
        if self.deploy:
            x = self.fused_mlp1(x, fuse)
            return self.fused_mlp2(self._connect_inference(x), fuse)
        if fold:  # eval mode: no drop path
            x = mlp_residual(x, layer_norm(x, self.norm1), self.channel_mlp1.fc1, self.channel_mlp1.fc2, fuse)
            x = self._connect_inference(x)
            return mlp_residual(x, layer_norm(x, self.norm2), self.channel_mlp2.fc1, self.channel_mlp2.fc2, fuse)
        x = x + self.drop_path(self.channel_mlp1(self.norm1(x)))
        x = self.connect(self.connect_norm(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return x + self.drop_path(self.channel_mlp2(self.norm2(x)))

    def _connect_inference(self, x: torch.Tensor) -> torch.Tensor:
        # ``connect_norm``'s affine is not folded into the conv: the conv zero-pads, so the folded bias
        # would be missing at the borders.
        return conv2d(layer_norm(x, self.connect_norm).permute(0, 3, 1, 2), self.connect).permute(0, 2, 3, 1)

    def switch_to_deploy(self) -> None:
        self.fused_mlp1 = ResidualChannelMLP.from_norm_mlp(self.norm1, self.channel_mlp1.fc1, self.channel_mlp1.fc2)
        self.fused_mlp2 = ResidualChannelMLP.from_norm_mlp(self.norm2, self.channel_mlp2.fc1, self.channel_mlp2.fc2)
        del self.norm1, self.channel_mlp1, self.norm2, self.channel_mlp2, self.drop_path
        self.deploy = True


class ConvDownsample(nn.Module):
    """Stride-2 3x3 conv between MLP stages, taking and returning channels-last tokens."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.downsample = nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 3, 1, 2)
        # bf16 tokens in bf16 inference (see ConvMLP.forward) with fp32 weights or biases: they are cast.
        conv = self.downsample
        x = conv(x) if x.dtype == conv.weight.dtype == conv.bias.dtype else conv2d(x, conv)
        return x.permute(0, 2, 3, 1)


class MLPStage(nn.Module):
    """A stage of ConvMLP blocks, optionally followed by a stride-2 downsample."""

    def __init__(self, num_blocks: int, channels: int, out_channels: Optional[int], mlp_ratio: float,
                 drop_path_rates: Sequence[float], with_cp: bool, deploy: bool = False) -> None:
        super().__init__()
        self.with_cp = with_cp
        hidden = int(channels * mlp_ratio)
        self.blocks = nn.ModuleList(
            [ConvMLPBlock(channels, hidden, rate, deploy) for rate in drop_path_rates[:num_blocks]])
        self.downsample_mlp = (ConvDownsample(channels, out_channels)
                               if out_channels is not None else nn.Identity())

    def forward(self, x: torch.Tensor, fold: bool = False, fuse: bool = False) -> torch.Tensor:
        for block in self.blocks:
            x = _maybe_checkpoint(functools.partial(block, fold=fold, fuse=fuse), x, self.with_cp)
        return self.downsample_mlp(x)


def _maybe_checkpoint(layer: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, with_cp: bool) -> torch.Tensor:
    # Recompute activations in the backward pass instead of storing them. Non-reentrant checkpointing
    # restores the RNG state, so drop-path masks (and thus outputs and gradients) are unchanged.
    if with_cp and torch.is_grad_enabled():
        return cp.checkpoint(layer, x, use_reentrant=False)
    return layer(x)


@register_model
class ConvMLP(BaseModule):
    """ConvMLP backbone.

    A PyTorch implementation of `ConvMLP: Hierarchical Convolutional MLPs for Vision
    <https://arxiv.org/abs/2109.04454>`_, giving the four feature levels (strides 4, 8, 16 and 32) that
    the paper's detection and segmentation models use:

    - level 0: the conv tokenizer's output (``channels`` channels, stride 4);
    - level 1: the conv stage's output (``dims[0]``, stride 8);
    - level 2: the first MLP stage's output after its downsample (``dims[1]``, stride 16);
    - level 3: the last MLP stage's output (``dims[-1]``, stride 32).

    Each level of an ``H x W`` input is ``ceil(H / stride) x ceil(W / stride)``.

    Args:
        arch (str | dict): ``'s'``, ``'m'`` or ``'l'`` (also ``'small'``, ``'medium'``, ``'large'``), or
            a dict with the keys ``blocks`` (MLP blocks per stage), ``dims`` (channels per MLP stage),
            ``mlp_ratios`` (hidden width of the channel MLPs per stage, relative to ``dims``),
            ``channels`` (tokenizer width) and ``n_conv_blocks`` (bottlenecks in the conv stage).
            ``blocks``, ``dims`` and ``mlp_ratios`` must have the same length. Defaults to ``'s'``.
        in_channels (int): Number of input image channels. Defaults to 3.
        out_indices (int | Sequence[int]): Which feature levels to return, in the given order;
            negative indices count from the last level. Defaults to ``(0, 1, 2, 3)``.
        frozen_stages (int): Freeze (``requires_grad=False`` and eval mode) the parts up to and
            including this index, counted as ``0``: tokenizer, ``1``: conv stage, ``2 + i``: MLP stage
            ``i`` (with its downsample). ``-1`` freezes nothing. Defaults to -1.
        drop_path_rate (float): Stochastic depth rate of the last block of every MLP stage; it rises
            linearly from 0 at each stage's first block, as in the paper. Defaults to 0.1.
        norm_cfg (dict): Normalization layer of the conv tokenizer and conv stage (the MLP stages use
            LayerNorm, as in the paper). Defaults to ``dict(type='BN', requires_grad=True)``.
        norm_eval (bool): Keep the conv parts' normalization layers in eval mode (frozen running
            statistics) while training. Defaults to False.
        with_cp (bool): Use gradient checkpointing in the conv and MLP blocks: less memory, more
            compute, same outputs and gradients. Defaults to False.
        channels_last (bool): Run the convolutions on channels-last (NHWC) memory, the layout the MLP
            stages use anyway, so the model copies between layouts only once per returned level: the
            levels are returned as contiguous NCHW tensors, because mmcv's compiled ops (RoIAlign in
            Mask R-CNN among them) read their input's memory as NCHW whatever its strides say. Same
            values as ``False`` (the plain NCHW path), faster on CPUs and on GPUs with tensor cores. The
            conv weights are kept channels-last too (what PyTorch recommends for channels-last models; flatten
            them with ``reshape``, not ``view``). Defaults to True.
        fast_inference (bool): In eval mode without gradients (testing, validation, the inferencers), run
            the inference form of the layers: each conv-BN-ReLU as one conv with its BatchNorm folded in
            for that call (work per weight, not per activation; nothing is kept between calls, so changed
            weights are always seen), and on CPUs the channel MLPs and conv-ReLUs as fused oneDNN kernels.
            Under bf16 autocast the backbone runs in bf16 throughout, so the fused kernels run in bf16
            too. Outputs equal the plain path's to float rounding. Tracing, ``torch.compile`` and
            exporters get the plain ops. Defaults to True.
        deploy (bool): Build the deployed structure directly: the conv parts as conv-ReLU layers
            (BatchNorms folded in) and each LayerNorm with its channel MLP as one layer (the affine
            folded into the first linear layer). For checkpoints written by
            ``tools/model_converters/reparameterize_model.py`` (or a model after :meth:`switch_to_deploy`);
            inference only: there is no drop path and no BatchNorm. Defaults to False.
        final_norm (bool): Apply a LayerNorm (``norm`` in the official checkpoints) to the last level,
            as the paper's classifier does before global average pooling. Defaults to False.
        init_cfg (dict | list[dict], optional): Initialization config. ``dict(type='Pretrained',
            checkpoint=PATH_OR_URL, prefix=None)`` loads a checkpoint: an official ConvMLP ``.pth``, a
            converted one, or a full detector/segmentor checkpoint (keys under ``backbone.`` are found
            automatically; ``prefix`` selects another sub-tree). Missing and unexpected keys are
            reported by name; a checkpoint sharing no key with the backbone, or with a key of another
            shape, is an error. ``None`` uses the paper's initialization. Defaults to None.
    """

    arch_settings: Dict[str, dict] = {
        's': dict(blocks=[2, 4, 2], dims=[128, 256, 512], mlp_ratios=[2, 2, 2], channels=64, n_conv_blocks=2),
        'm': dict(blocks=[3, 6, 3], dims=[128, 256, 512], mlp_ratios=[3, 3, 3], channels=64, n_conv_blocks=3),
        'l': dict(blocks=[4, 8, 3], dims=[192, 384, 768], mlp_ratios=[3, 3, 3], channels=96, n_conv_blocks=3),
    }
    arch_aliases: Dict[str, str] = {'small': 's', 'medium': 'm', 'large': 'l'}

    def __init__(self,
                 arch: Union[str, dict] = 's',
                 in_channels: int = 3,
                 out_indices: Union[int, Sequence[int]] = (0, 1, 2, 3),
                 frozen_stages: int = -1,
                 drop_path_rate: float = 0.1,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 channels_last: bool = True,
                 fast_inference: bool = True,
                 deploy: bool = False,
                 final_norm: bool = False,
                 init_cfg: Optional[Union[dict, List[dict]]] = None,
                 **unknown) -> None:
        if unknown:
            # An explicit check instead of Python's TypeError, so the message lists the valid names.
            valid = [name for name in inspect.signature(ConvMLP.__init__).parameters
                     if name not in ('self', 'unknown')]
            raise TypeError(f'ConvMLP got unknown argument(s) {sorted(unknown)}; valid arguments are {valid}')
        super().__init__(init_cfg=init_cfg)
        self.arch = self._parse_arch(arch)
        blocks, dims = self.arch['blocks'], self.arch['dims']
        channels = self.arch['channels']
        num_stages = len(blocks)
        if not 0 <= drop_path_rate < 1:
            raise ValueError(f'drop_path_rate must be in [0, 1), got {drop_path_rate!r}')

        self.norm_eval = norm_eval
        self.with_cp = with_cp
        self.channels_last = channels_last
        self.fast_inference = fast_inference
        self.deploy = deploy
        if deploy and 'BN' not in str(norm_cfg.get('type')):
            raise ValueError(f"deploy=True folds the conv parts' BatchNorms, but norm_cfg is {norm_cfg!r}; "
                             f"use norm_cfg type 'BN' or 'SyncBN', or deploy=False")
        self.tokenizer = ConvTokenizer(in_channels, channels, norm_cfg, deploy)
        self.conv_stages = ConvStage(self.arch['n_conv_blocks'], channels, dims[0], dims[0], norm_cfg, with_cp, deploy)
        self.stages = nn.ModuleList()
        # A stage's output is a feature level when it is the last one at its stride: the stages with a
        # downsample except the second-to-last one (whose stride the last stage keeps), and the last.
        self._stage_is_level = []
        self.out_channels_all = [channels, dims[0]]
        for i in range(num_stages):
            out = dims[i + 1] if i + 1 < num_stages else None
            rates = torch.linspace(0, drop_path_rate, blocks[i]).tolist()
            self.stages.append(MLPStage(blocks[i], dims[i], out, self.arch['mlp_ratios'][i], rates, with_cp, deploy))
            is_level = i < num_stages - 2 or i == num_stages - 1
            self._stage_is_level.append(is_level)
            if is_level:
                self.out_channels_all.append(out if out is not None else dims[i])
        self.num_levels = len(self.out_channels_all)
        self.norm = nn.LayerNorm(dims[-1]) if final_norm else None

        self.out_indices = self._parse_out_indices(out_indices)
        self.out_channels = [self.out_channels_all[i] for i in self.out_indices]
        num_parts = 2 + num_stages
        if not isinstance(frozen_stages, int) or not -1 <= frozen_stages < num_parts:
            raise ValueError(f'frozen_stages must be an int in [-1, {num_parts - 1}] (-1: none, 0: tokenizer, '
                             f'1: conv stage, 2..{num_parts - 1}: MLP stages), got {frozen_stages!r}')
        self.frozen_stages = frozen_stages
        self._freeze_stages()
        if channels_last:
            # Conv weights in the layout of the activations: oneDNN and cuDNN would otherwise reorder every
            # weight in every call (10% of ConvMLP-S's CPU inference at 320x256, batch 1). Loading a state dict
            # copies into this layout; saved tensors keep it, and load into either layout.
            for module in self.modules():
                if isinstance(module, nn.Conv2d):
                    module.weight.data = module.weight.data.contiguous(memory_format=torch.channels_last)

    @classmethod
    def _parse_arch(cls, arch: Union[str, dict]) -> dict:
        if isinstance(arch, str):
            key = cls.arch_aliases.get(arch.lower(), arch.lower())
            if key not in cls.arch_settings:
                raise ValueError(f'Unknown ConvMLP arch {arch!r}; choose one of '
                                 f'{sorted(cls.arch_settings) + sorted(cls.arch_aliases)} or pass a dict '
                                 f'with the keys {list(ARCH_KEYS)}')
            return {k: list(v) if isinstance(v, list) else v for k, v in cls.arch_settings[key].items()}
        if not isinstance(arch, dict):
            raise TypeError(f'arch must be a str or a dict, got {type(arch).__name__}: {arch!r}')
        missing = [k for k in ARCH_KEYS if k not in arch]
        extra = [k for k in arch if k not in ARCH_KEYS]
        if missing or extra:
            raise ValueError(f'ConvMLP arch dict must have exactly the keys {list(ARCH_KEYS)}; '
                             f'missing {missing}, unknown {extra}')
        lengths = {k: len(arch[k]) for k in ('blocks', 'dims', 'mlp_ratios')}
        if len(set(lengths.values())) != 1 or lengths['blocks'] == 0:
            raise ValueError(f'ConvMLP arch: blocks, dims and mlp_ratios must be non-empty and of equal '
                             f'length, got lengths {lengths}')
        return {k: list(arch[k]) if k in lengths else arch[k] for k in ARCH_KEYS}

    def _parse_out_indices(self, out_indices: Union[int, Sequence[int]]) -> List[int]:
        indices = [out_indices] if isinstance(out_indices, int) else list(out_indices)
        parsed = []
        for index in indices:
            if not isinstance(index, int) or not -self.num_levels <= index < self.num_levels:
                raise ValueError(f'out_indices {out_indices!r}: {index!r} is out of range; valid indices '
                                 f'are 0..{self.num_levels - 1} (or -{self.num_levels}..-1)')
            parsed.append(index % self.num_levels)
        if not parsed:
            raise ValueError('out_indices must select at least one level')
        return parsed

    def _parts(self) -> List[nn.Module]:
        return [self.tokenizer, self.conv_stages, *self.stages]

    def _freeze_stages(self) -> None:
        for part in self._parts()[:self.frozen_stages + 1]:
            part.eval()
            for param in part.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'ConvMLP':
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self

    def init_weights(self) -> None:
        if isinstance(self.init_cfg, dict) and self.init_cfg.get('type') == 'Pretrained':
            # Initialise first, so that parts the checkpoint does not cover are not left at PyTorch's
            # defaults, then load (which refuses checkpoints that fit nothing or fit with wrong shapes).
            self.apply(_paper_init)
            cfg = dict(self.init_cfg)
            load_pretrained(self, cfg.pop('checkpoint'), prefix=cfg.pop('prefix', None),
                            map_location=cfg.pop('map_location', 'cpu'))
            self._is_init = True
        elif self.init_cfg is None:
            self.apply(_paper_init)
        else:
            super().init_weights()

    @torch.no_grad()
    def switch_to_deploy(self) -> 'ConvMLP':
        """Convert to the deployed structure (what ``deploy=True`` builds), for inference: each conv-BN-ReLU
        of the conv parts becomes a :class:`~convmlp_mm.models.fused.ConvReLU` (BatchNorm folded in), each
        LayerNorm with its channel MLP a :class:`~convmlp_mm.models.fused.ResidualChannelMLP` (affine folded
        into the first linear layer). Outputs stay the same to float rounding; the state dict then has the
        deployed keys. Call it after loading weights. It works in either mode, since what it folds are the
        running statistics (mmdeploy's task processors call it before ``model.eval()``, as for mmpretrain's
        RepVGG); the deployed structure is for inference.
        """
        if self.deploy:
            return self
        self.tokenizer.switch_to_deploy()
        self.conv_stages.switch_to_deploy()
        for stage in self.stages:
            for block in stage.blocks:
                block.switch_to_deploy()
        self.deploy = True
        return self

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        inference = not self.training and not torch.is_grad_enabled() and not is_graph_capture(x)
        if not (self.deploy or (self.fast_inference and inference)):
            return self._forward(x, fold=False, fuse=False)
        device = x.device.type
        if (inference and is_autocast_enabled(device) and get_autocast_dtype(device) == torch.bfloat16
                and (self.deploy or self._conv_norms_fold())):
            # Autocast would run LayerNorm in fp32 and cast around every matmul (and rule out the fused
            # kernels): the backbone runs in bf16 throughout instead, its weights cast as each layer uses
            # them and its LayerNorms and convs accumulating in fp32 inside their kernels.
            with torch.autocast(device, enabled=False):
                x = x.to(torch.bfloat16)
                return self._forward(x, fold=True, fuse=onednn_fusable(x))
        return self._forward(x, fold=True, fuse=onednn_fusable(x))

    def _conv_norms_fold(self) -> bool:
        """Whether the conv parts' norms fold into their convs (BatchNorms do, GroupNorms do not)."""
        return all_foldable(self.tokenizer.block) and all(map(all_foldable, self.conv_stages.conv_blocks))

    def _forward(self, x: torch.Tensor, fold: bool, fuse: bool) -> Tuple[torch.Tensor, ...]:
        """The levels of ``x``: with ``fold``, the inference form of the layers (deployed, or folded on the
        fly), with ``fuse`` through fused oneDNN kernels (decided once per call by the caller)."""
        levels = []
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        # The tokenizer's stride-2 activations are the largest of the model, so with_cp covers it too.
        x = _maybe_checkpoint(functools.partial(self.tokenizer, fold=fold, fuse=fuse), x, self.with_cp)
        if fold and self.conv_stages.runs_winograd(x, fuse):
            x = x.contiguous()  # the conv stage's NCHW memory, and level 0 as returned: one copy for both
        levels.append(x)
        x = self.conv_stages(x, fold, fuse)
        levels.append(x)
        x = x.permute(0, 2, 3, 1)  # the MLP stages work on channels-last tokens (a view if channels_last)
        last = len(self.stages) - 1
        for i, stage in enumerate(self.stages):
            x = stage(x, fold, fuse)
            if self._stage_is_level[i]:
                feat = x
                if i == last and self.norm is not None:
                    feat = layer_norm(x, self.norm) if fold else self.norm(x)
                levels.append(feat.permute(0, 3, 1, 2))  # an NCHW view of channels-last memory
        # Contiguous NCHW for whatever reads the levels: mmcv 2.1's RoIAlign (CPU) reads channels-last
        # memory as if it were NCHW and pools wrong features, silently (tests/test_configs/test_detection.py).
        return tuple(levels[i].contiguous() for i in self.out_indices)


def _paper_init(module: nn.Module) -> None:
    """The official implementation's initialization."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.LayerNorm, _BatchNorm, nn.GroupNorm)):
        if module.weight is not None:
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Conv2d):
        nn.init.kaiming_normal_(module.weight, mode='fan_out', nonlinearity='relu')
