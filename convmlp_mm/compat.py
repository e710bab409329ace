"""The one place where the versions of torch, numpy and mmengine that users bring are told apart.

convmlp_mm supports torch 2.1 to 2.14, numpy 1.26 and 2.x, and upstream mmengine 0.10.7 as well as the
OneDL fork (onedl-mmengine 0.10.12, which installs the same ``mmengine`` module). Every API that differs
between those versions is reached through a function here, with a fallback that keeps the behaviour the
same; nothing else in the package checks versions or probes with ``hasattr``. The first torch release of
each API below was read in torch's own source.
"""
import importlib
import importlib.util
import inspect
from types import ModuleType
from typing import Callable, Dict, Optional, Tuple

import numpy as np
import torch

from .environment import version_tuple
from .errors import UserError

TORCH_VERSION = version_tuple(torch.__version__)


class UnsupportedTorchError(UserError, RuntimeError):
    """A feature needs a newer torch than the installed one (the message names both)."""


def require_torch(minimum: Tuple[int, int], feature: str) -> None:
    """Raise :class:`UnsupportedTorchError` if the installed torch is older than ``minimum``."""
    if TORCH_VERSION < minimum:
        wanted = '.'.join(map(str, minimum))
        raise UnsupportedTorchError(f'{feature} needs torch >= {wanted} (torch.export with dynamic shapes and the '
                                    f'dynamo ONNX exporter); this environment has torch {torch.__version__}. '
                                    f'Export in an environment with a newer torch; the .onnx file runs anywhere.')


def tensor_rebuild_functions() -> Dict[str, Callable]:
    """The functions of ``torch._utils`` that torch's pickles of tensors and parameters call, those this torch
    has (``_rebuild_tensor_v3`` is newer than torch 2.1)."""
    names = ('_rebuild_tensor', '_rebuild_tensor_v2', '_rebuild_tensor_v3', '_rebuild_parameter',
             '_rebuild_parameter_with_state', '_rebuild_device_tensor_from_numpy', '_rebuild_meta_tensor_no_storage')
    return {name: getattr(torch._utils, name) for name in names if hasattr(torch._utils, name)}


# --- graph capture -------------------------------------------------------------------------------------

def torchscript_onnx_export_kwargs() -> dict:
    """The ``torch.onnx.export`` arguments that choose the TorchScript exporter: ``dynamo=False`` where torch has the
    argument (2.5+; from 2.9 the dynamo exporter is the default), none before (it is the only one there)."""
    return {'dynamo': False} if 'dynamo' in inspect.signature(torch.onnx.export).parameters else {}


def is_compiling() -> bool:
    """Whether torch.compile (dynamo) is tracing the code (``torch.compiler.is_compiling``, torch >= 2.3)."""
    if TORCH_VERSION >= (2, 3):
        return torch.compiler.is_compiling()
    return torch._utils.is_compiling()  # torch 2.1/2.2: dynamo reads it as True while it traces


def is_exporting(x: Optional[torch.Tensor] = None) -> bool:
    """Whether ``torch.export`` is tracing the code (``torch.compiler.is_exporting``, torch >= 2.7).

    Before 2.7, non-strict export runs the code on fake tensors, which is what ``x`` is checked for.
    """
    if TORCH_VERSION >= (2, 7):
        return torch.compiler.is_exporting()
    if x is None:
        return False
    from torch._subclasses.fake_tensor import is_fake
    return is_fake(x)


def is_graph_capture(x: Optional[torch.Tensor] = None) -> bool:
    """Whether the forward pass is being traced, compiled or exported rather than run."""
    return (torch.jit.is_tracing() or is_compiling() or is_exporting(x)
            or torch.onnx.is_in_onnx_export())


# --- autocast ------------------------------------------------------------------------------------------

def is_autocast_enabled(device_type: str) -> bool:
    """``torch.is_autocast_enabled(device_type)`` (the argument exists from torch 2.4)."""
    if TORCH_VERSION >= (2, 4):
        return torch.is_autocast_enabled(device_type)
    if device_type == 'cpu':
        return torch.is_autocast_cpu_enabled()
    return device_type == 'cuda' and torch.is_autocast_enabled()


def get_autocast_dtype(device_type: str) -> torch.dtype:
    """``torch.get_autocast_dtype(device_type)`` (torch >= 2.4)."""
    if TORCH_VERSION >= (2, 4):
        return torch.get_autocast_dtype(device_type)
    return torch.get_autocast_cpu_dtype() if device_type == 'cpu' else torch.get_autocast_gpu_dtype()


def nnpack_available() -> bool:
    """Whether this torch has NNPACK and it runs on this CPU (x86 builds need AVX2); the call also initialises
    NNPACK, without which ``torch._nnpack_spatial_convolution`` fails (``SpatialConvolution_updateOutput failed``).

    ``torch._nnpack_available()``, which ``torch.backends.nnpack.is_available()`` wraps: torch 2.1 has the
    function but does not import that module with ``torch.backends``.
    """
    return bool(getattr(torch, '_nnpack_available', lambda: False)()
                and hasattr(torch, '_nnpack_spatial_convolution'))


def cpu_has_bf16_instructions() -> bool:
    """Whether the CPU has bf16 arithmetic instructions (``avx512_bf16`` or AMX).

    torch's cpuinfo probes (``torch.cpu._is_avx512_bf16_supported``, ``_is_amx_tile_supported``) are newer than
    torch 2.1; there the kernel's CPU flags are read instead.
    """
    probes = [getattr(torch.cpu, name, None) for name in ('_is_avx512_bf16_supported', '_is_amx_tile_supported')]
    if all(probe is not None for probe in probes):
        return any(probe() for probe in probes)
    try:
        with open('/proc/cpuinfo') as cpuinfo:
            flags = next((line.split(':', 1)[1].split() for line in cpuinfo if line.startswith('flags')), [])
    except OSError:
        return False
    return 'avx512_bf16' in flags or 'amx_bf16' in flags


def cuda_has_native_bf16() -> bool:
    """Whether the current CUDA GPU has bf16 arithmetic (not only emulation): compute capability 8.0 on.

    ``torch.cuda.is_bf16_supported(including_emulation=False)`` says so from torch 2.4; before, the
    function also answered True for emulation, so the capability is read directly.
    """
    return torch.cuda.get_device_capability()[0] >= 8


# --- numpy ---------------------------------------------------------------------------------------------

def numpy_multiarray() -> ModuleType:
    """numpy's ``multiarray`` module: ``numpy._core.multiarray`` in numpy 2, ``numpy.core.multiarray`` in 1.x.

    Decided by numpy's version, not by ``hasattr(np, '_core')``: with numpy 1.x, ``numpy._core`` exists
    as an empty stub once any module built against numpy 2 (opencv-python, onnx) has been imported.
    """
    if version_tuple(np.__version__) >= (2,):
        return importlib.import_module('numpy._core.multiarray')
    return importlib.import_module('numpy.core.multiarray')


def numpy_dtype_classes() -> list:
    """The classes of numpy's dtypes (``numpy.dtypes.Float64DType`` ...; the module exists from numpy 1.25)."""
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is None:
        return []
    return [cls for cls in vars(dtypes).values() if isinstance(cls, type) and issubclass(cls, np.dtype)]


# --- mmengine ------------------------------------------------------------------------------------------

def resolve_forked_config_packages() -> None:
    """Let ``mmseg::`` (and the other ``scope::`` config bases) resolve when the OneDL fork is installed.

    mmengine maps a scope to the distribution that provides it (``mmseg`` -> ``mmsegmentation``) and asks
    for that distribution by name. The fork installs the module under another distribution name
    (``onedl-mmsegmentation``), so the look-up fails although ``import mmseg`` works. Where the mapped
    distribution is missing but the module is importable, the scope is mapped to the module itself, which
    mmengine then finds by its import spec. Scopes whose distribution is installed are left alone.
    """
    from importlib.metadata import PackageNotFoundError, distribution

    from mmengine.config import utils as config_utils
    mapping = getattr(config_utils, 'MODULE2PACKAGE', None)
    if mapping is None:
        return
    for scope, package in list(mapping.items()):
        try:
            distribution(package)
        except PackageNotFoundError:
            if scope != package and importlib.util.find_spec(scope) is not None:
                mapping[scope] = scope
