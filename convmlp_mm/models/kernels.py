"""Fast CPU kernels for the deployed backbone, and the probes that decide when they may run.

The architecture (``backbones/convmlp.py``) calls :func:`run_conv_layers` and :func:`fused_mlp_residual`;
everything about which oneDNN ops this torch has, which dtypes the CPU computes fast, and when a forward
pass is being traced instead of run is decided here (version differences through :mod:`convmlp_mm.compat`).
"""
import functools
import time
from typing import Tuple

import torch
import torch.nn as nn

from ..compat import is_autocast_enabled, is_graph_capture


@functools.lru_cache(maxsize=None)
def onednn_ops() -> Tuple[bool, bool, bool]:
    """(fused linear, fused conv, bf16 kernels) that this torch's oneDNN offers.

    The fused ops are private (the ones torch.compile's CPU backend emits), so they are looked up rather
    than assumed. oneDNN's bf16 kernels need AVX-512 (BW/VL/DQ) or AVX-NE-CONVERT.
    """
    available = torch.backends.mkldnn.is_available()
    linear = available and hasattr(torch.ops.mkldnn, '_linear_pointwise')
    conv = available and hasattr(torch.ops.mkldnn, '_convolution_pointwise')
    return linear, conv, linear and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


# Probed now, at import: the probe is an operator call, which a jit trace (mmengine's FLOP counter) that
# happened to reach it first would refuse.
onednn_ops()


@functools.lru_cache(maxsize=None)
def cpu_matmul_rates(size: int = 1024, repeats: int = 3) -> Tuple[float, float]:
    """(fp32, bf16) GFLOP/s of a ``size``² matmul on this CPU, best of ``repeats``; measured once per process
    (about 0.1 s). Having the instructions does not make bf16 fast: a Xeon with avx512_bf16 but no AMX ran a
    2048² bf16 matmul at 142 GFLOP/s against 254 in fp32, an AMX Xeon at 5.7x fp32."""
    rates = []
    for dtype in (torch.float32, torch.bfloat16):
        a = torch.randn(size, size).to(dtype)
        torch.mm(a, a)  # warm-up: oneDNN picks and caches its kernel
        best = float('inf')
        for _ in range(repeats):
            start = time.perf_counter()
            torch.mm(a, a)
            best = min(best, time.perf_counter() - start)
        rates.append(2 * size ** 3 / best / 1e9)
    return rates[0], rates[1]


def onednn_fusable(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether deployed layers may run as fused oneDNN kernels: CPU inference in eager mode, outside
    autocast, with activations and weights both fp32 (or both bf16 where oneDNN has bf16). Exporters and
    compilers get the plain ops, which they know how to translate and fuse."""
    linear, _, bf16 = onednn_ops()
    if x.dtype != weight.dtype or x.dtype not in (torch.float32, torch.bfloat16):
        return False
    return (linear and (x.dtype == torch.float32 or bf16) and x.device.type == 'cpu'
            and not torch.is_grad_enabled() and not is_autocast_enabled('cpu') and not is_graph_capture(x))


def fused_mlp_residual(x: torch.Tensor, z: torch.Tensor, fc1: nn.Linear, fc2: nn.Linear) -> torch.Tensor:
    """``x + fc2(gelu(fc1(z)))`` as two oneDNN matmuls that apply the bias, the exact (erf) GELU and the
    residual add inside the kernel, instead of four more passes over the activations. ``torch.compile``
    picks the same kernels for this pattern on CPUs; this gets them in eager mode too."""
    hidden = torch.ops.mkldnn._linear_pointwise(z, fc1.weight, fc1.bias, 'gelu', [], 'none')
    return torch.ops.mkldnn._linear_pointwise.binary(hidden, x, fc2.weight, fc2.bias, 'add')


def _conv_relu(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``relu(conv(x))`` as one oneDNN convolution with a ReLU post-op (a separate in-place ReLU was 16% of
    ConvMLP-S's bf16 time, batch 8, 224x224) where the conv's padding allows, else the two ops. The caller
    has checked :func:`onednn_fusable` once for the whole sequence (its convs share dtype and device)."""
    if conv.padding_mode == 'zeros' and not isinstance(conv.padding, str):
        return torch.ops.mkldnn._convolution_pointwise(x, conv.weight, conv.bias, conv.padding, conv.stride,
                                                       conv.dilation, conv.groups, 'relu', [], '')
    return torch.relu(conv(x))


def run_conv_layers(layers: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """``layers(x)``, except that in CPU inference each conv whose BatchNorm ``switch_to_deploy()`` folded
    (an ``Identity`` in its place) runs with the ReLU after it through :func:`_conv_relu`."""
    first = layers[0]
    if not (onednn_ops()[1] and isinstance(first, nn.Conv2d) and onednn_fusable(x, first.weight)):
        return layers(x)
    modules = list(layers)
    i = 0
    while i < len(modules):
        if (isinstance(modules[i], nn.Conv2d) and i + 2 < len(modules) and isinstance(modules[i + 1], nn.Identity)
                and isinstance(modules[i + 2], nn.ReLU)):
            x = _conv_relu(x, modules[i])
            i += 3
        else:
            x = modules[i](x)
            i += 1
    return x
