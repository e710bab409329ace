"""Fast CPU kernels for the inference form of the backbone, and the probes that decide when they may run.

The inference layers of the backbone (``backbones/convmlp.py``, ``fused.py``) run through the functions
here; everything about which oneDNN ops this torch has, which dtypes the CPU computes fast, and when a
forward pass is being traced instead of run is decided here (version differences through
:mod:`convmlp_mm.compat`).
"""
import functools
import statistics
import time
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..compat import is_autocast_enabled, is_graph_capture, nnpack_available


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
def nnpack_ready() -> bool:
    """Whether NNPACK runs here, initialised (:func:`convmlp_mm.compat.nnpack_available`), probed once."""
    return nnpack_available()


def winograd_pays_on(cpuinfo: str) -> bool:
    """Whether NNPACK's Winograd convolution, written for AVX2's 256-bit FMAs, beats oneDNN's direct one on the CPU
    ``/proc/cpuinfo`` describes: where oneDNN's AVX-512 does not do more FMAs per cycle than AVX2. Zen 4 (AMD family
    25 with AVX-512) splits each 512-bit FMA in two 256-bit halves; there it was measured (see
    :data:`WINOGRAD_MIN_AREA`). A CPU without AVX-512 runs both libraries on 256-bit FMAs as Zen 4 does (not
    measured). Intel's AVX-512 cores and Zen 5 run 512-bit FMAs at full width, twice NNPACK's rate: not used there."""
    fields = {}
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(':')
        fields.setdefault(key.strip(), value.strip())
    flags = fields.get('flags', '').split()
    if 'avx2' not in flags or 'fma' not in flags:
        return False
    if 'avx512f' not in flags:
        return True
    return fields.get('vendor_id') == 'AuthenticAMD' and fields.get('cpu family') == '25'


@functools.lru_cache(maxsize=None)
def winograd_pays() -> bool:
    """:func:`winograd_pays_on` for this machine's CPU (Linux; elsewhere False)."""
    try:
        with open('/proc/cpuinfo') as cpuinfo:
            return winograd_pays_on(cpuinfo.read())
    except OSError:
        return False


#: The smallest feature map (height x width) on which the conv stage runs its 3x3 convs through NNPACK. Its
#: Winograd F(6x6, 3x3) convolution multiplies 64 values per 36 outputs where a direct one multiplies 9 per output
#: (5x fewer, before the cost of its transforms); per 3x3 conv of ConvMLP's conv stage on a 2-core Zen 4 EPYC
#: (torch 2.14.1, fp32, one image) it ran at 1.3x oneDNN's speed at 128x128 and 1.9x at 200x334 (the S
#: detector's 800x1333) with 128 channels, 1.8x and 2.4x with 192 (L). At 56x56 (224x224 images) the whole S
#: backbone ran slower with it (0.24 s against 0.21 s for a batch of 8): the tiles' overhead and the NCHW
#: layout's 1x1 convs eat the saving.
WINOGRAD_MIN_AREA = 64 * 64


def matmul_gflops(device: str = 'cpu', n: int = 2048, repeats: int = 10, dtype: torch.dtype = torch.float32) -> float:
    """The device's rate for an ``n x n`` matrix product in ``dtype`` (median of ``repeats`` after a warm-up in
    which oneDNN or cuBLAS picks its kernel), in GFLOP/s: the reference of the benchmarks' "% of matmul rate"
    and of the bf16 check below."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    times = []
    for i in range(repeats + 1):
        if device.startswith('cuda'):
            torch.cuda.synchronize()
        start = time.perf_counter()
        torch.mm(a, a)
        if device.startswith('cuda'):
            torch.cuda.synchronize()
        if i:
            times.append(time.perf_counter() - start)
    return 2 * n ** 3 / statistics.median(times) / 1e9


@functools.lru_cache(maxsize=None)
def cpu_matmul_rates() -> Tuple[float, float]:
    """(fp32, bf16) GFLOP/s of a 1024² matmul on this CPU, measured once per process (about 0.1 s). Having the
    instructions does not make bf16 fast: a Xeon with avx512_bf16 but no AMX ran a 2048² bf16 matmul at 142
    GFLOP/s against 254 in fp32, an AMX Xeon at 5.7x fp32."""
    return matmul_gflops('cpu', 1024, 3, torch.float32), matmul_gflops('cpu', 1024, 3, torch.bfloat16)


def onednn_fusable(x: torch.Tensor) -> bool:
    """Whether the inference layers may run ``x`` through fused oneDNN kernels: CPU inference in eager mode,
    outside autocast, on fp32 activations (or bf16 where oneDNN has bf16 kernels). Exporters and compilers get
    the plain ops, which they know how to translate and fuse. Checked once per forward pass, by the backbone."""
    linear, _, bf16 = onednn_ops()
    return (linear and (x.dtype == torch.float32 or (x.dtype == torch.bfloat16 and bf16)) and x.device.type == 'cpu'
            and not torch.is_grad_enabled() and not is_autocast_enabled('cpu') and not is_graph_capture(x))


def winograd_applies(x: torch.Tensor, fuse: bool) -> bool:
    """Whether the conv stage runs ``x`` (fp32, NCHW or channels-last) through :func:`conv_relu_nchw`: fused CPU
    inference (``fuse``, see :func:`onednn_fusable`) in fp32 (NNPACK has no bf16 kernels), NNPACK ready, and a
    feature map of at least :data:`WINOGRAD_MIN_AREA`, on a CPU where it pays (:func:`winograd_pays`)."""
    return (fuse and x.dtype == torch.float32 and x.shape[-2] * x.shape[-1] >= WINOGRAD_MIN_AREA
            and onednn_ops()[1] and nnpack_ready() and winograd_pays())


def conv_relu_nchw(x: torch.Tensor, conv: nn.Conv2d, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``relu(conv(x))`` with ``weight`` and ``bias`` on NCHW memory (where :func:`winograd_applies`): a 3x3
    stride-1 conv through NNPACK's Winograd convolution, one image at a time (for a batch NNPACK switches to
    its training algorithm, which ran 3x slower at 2x128x200x200; its thread pool takes torch's thread count at
    its first convolution); any other conv as one oneDNN convolution with a ReLU post-op."""
    # NCHW strides, always: oneDNN turns to channels-last (copying the activations in and out) when the weight's
    # strides suggest it, which a 1x1 weight's can while being "contiguous" (after model.to(channels_last)).
    weight = weight.clone(memory_format=torch.contiguous_format)
    if (conv.kernel_size == (3, 3) and conv.stride == (1, 1) and conv.dilation == (1, 1) and conv.groups == 1
            and conv.padding == (1, 1) and conv.padding_mode == 'zeros'):
        images = [torch._nnpack_spatial_convolution(image, weight, bias, conv.padding) for image in x.split(1)]
        return (images[0] if len(images) == 1 else torch.cat(images)).relu_()
    return torch.ops.mkldnn._convolution_pointwise(x.contiguous(), weight, bias, conv.padding, conv.stride,
                                                   conv.dilation, conv.groups, 'relu', [], '')


def as_dtype_of(t: Optional[torch.Tensor], x: torch.Tensor) -> Optional[torch.Tensor]:
    """``t`` in ``x``'s dtype: fp32 weights for bf16 activations in bf16 inference, else ``t`` itself."""
    return t if t is None or t.dtype == x.dtype else t.to(x.dtype)


def conv2d(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``conv(x)`` in ``x``'s dtype."""
    return conv._conv_forward(x, as_dtype_of(conv.weight, x), as_dtype_of(conv.bias, x))


def layer_norm(x: torch.Tensor, norm: nn.LayerNorm) -> torch.Tensor:
    """``norm(x)`` in ``x``'s dtype (LayerNorm kernels accumulate in fp32 for bf16 inputs)."""
    return F.layer_norm(x, norm.normalized_shape, as_dtype_of(norm.weight, x), as_dtype_of(norm.bias, x), norm.eps)


def conv_relu(x: torch.Tensor, conv: nn.Conv2d, weight: torch.Tensor, bias: torch.Tensor, fuse: bool) -> torch.Tensor:
    """``relu(conv(x))`` with ``weight`` and ``bias`` (a BatchNorm folded in). With ``fuse`` (see
    :func:`onednn_fusable`), one oneDNN convolution with a ReLU post-op where the padding allows: a separate
    in-place ReLU was 16% of ConvMLP-S's bf16 time (batch 8, 224x224)."""
    weight, bias = as_dtype_of(weight, x), as_dtype_of(bias, x)
    if fuse and onednn_ops()[1] and conv.padding_mode == 'zeros' and not isinstance(conv.padding, str):
        return torch.ops.mkldnn._convolution_pointwise(x, weight, bias, conv.padding, conv.stride, conv.dilation,
                                                       conv.groups, 'relu', [], '')
    return torch.relu(conv._conv_forward(x, weight, bias))


def mlp_residual(x: torch.Tensor, z: torch.Tensor, fc1: nn.Linear, fc2: nn.Linear, fuse: bool) -> torch.Tensor:
    """``x + fc2(gelu(fc1(z)))``. With ``fuse``, two oneDNN matmuls that apply the bias, the exact (erf) GELU
    and the residual add inside the kernel, instead of four more passes over the activations; ``torch.compile``
    picks the same kernels for this pattern on CPUs."""
    w1, b1 = as_dtype_of(fc1.weight, x), as_dtype_of(fc1.bias, x)
    w2, b2 = as_dtype_of(fc2.weight, x), as_dtype_of(fc2.bias, x)
    if fuse:
        hidden = torch.ops.mkldnn._linear_pointwise(z, w1, b1, 'gelu', [], 'none')
        return torch.ops.mkldnn._linear_pointwise.binary(hidden, x, w2, b2, 'add')
    return x + F.linear(F.gelu(F.linear(z, w1, b1)), w2, b2)
