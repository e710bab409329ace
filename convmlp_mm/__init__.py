"""ConvMLP (Li et al., 2021) backbones for OpenMMLab.

``import convmlp_mm`` (or ``custom_imports=dict(imports=['convmlp_mm'])`` in a config) registers
``ConvMLP`` so that MMDetection, MMSegmentation and MMPretrain configs can build it. It imports none of
those libraries. It also makes mmengine load checkpoints without running code from them, on every torch
(:mod:`convmlp_mm.checkpoint_safety`), and lets ``mmseg::`` config bases resolve on the OneDL fork
(:func:`convmlp_mm.compat.resolve_forked_config_packages`).
"""
from .environment import check_environment

check_environment()  # before anything imports mmcv or mmengine: name what is missing in one message

from . import datasets, deploy, engine  # noqa: E402,F401  (register the transforms, hooks, file backend, ONNX model)
from .checkpoint_safety import install_safe_loaders  # noqa: E402
from .compat import resolve_forked_config_packages  # noqa: E402
from .configs import config_path  # noqa: E402
from .models import ConvMLP  # noqa: E402
from .version import __version__  # noqa: E402

install_safe_loaders()
resolve_forked_config_packages()

__all__ = ['ConvMLP', 'config_path', '__version__']
