"""ConvMLP (Li et al., 2021) backbones for OpenMMLab.

``import convmlp_mm`` (or ``custom_imports=dict(imports=['convmlp_mm'])`` in a config) registers
``ConvMLP`` so that MMDetection, MMSegmentation and MMPretrain configs can build it. It imports none of
those libraries.
"""
from .models import ConvMLP
from .version import __version__

__all__ = ['ConvMLP', '__version__']
