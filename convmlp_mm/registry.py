"""The registry that ConvMLP's modules live in.

``MODELS`` is a child of mmengine's root model registry with scope ``convmlp_mm``. Modules registered
with :func:`register_model` go into it *and* into the root registry:

- ``type='convmlp_mm.ConvMLP'`` is resolved by mmengine through the root's child with that scope;
- an unprefixed ``type='ConvMLP'`` built from the mmdet, mmseg or mmpretrain registries falls back to
  their parent, the root registry, because mmengine searches a registry and then its parents.

Registering in the root rather than in ``mmdet.registry.MODELS`` etc. is what lets ``import convmlp_mm``
avoid importing mmdet or mmseg: a user with only one of them installed can still use the backbone.
"""
from typing import TypeVar

from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import Registry

MODELS = Registry('model', parent=MMENGINE_MODELS, scope='convmlp_mm', locations=['convmlp_mm.models'])

ClassType = TypeVar('ClassType', bound=type)


def register_model(cls: ClassType) -> ClassType:
    """Class decorator: register ``cls`` in ``convmlp_mm``'s registry and in mmengine's root registry."""
    MODELS.register_module(module=cls)
    MMENGINE_MODELS.register_module(module=cls)
    return cls
