"""ConvMLP (Li et al., 2021) backbones for OpenMMLab.

``import convmlp_mm`` (or ``custom_imports=dict(imports=['convmlp_mm'])`` in a config) registers
``ConvMLP`` so that MMDetection, MMSegmentation and MMPretrain configs can build it. It imports none of
those libraries. It also lets torch's safe ``weights_only`` loading read mmengine's own checkpoints
(see :mod:`convmlp_mm.checkpoint_safety`).
"""
from . import datasets, deploy, engine  # noqa: F401  (register the transforms, hooks, file backend, ONNX model)
from .checkpoint_safety import allow_mmengine_checkpoints
from .models import ConvMLP
from .version import __version__

allow_mmengine_checkpoints()

__all__ = ['ConvMLP', '__version__']
