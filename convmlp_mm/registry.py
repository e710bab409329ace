"""The registries that convmlp_mm's modules and transforms live in.

``MODELS``, ``TRANSFORMS``, ``HOOKS``, ``PARAM_SCHEDULERS``, ``LOOPS`` and ``OPTIM_WRAPPERS`` are children of
mmengine's root registries with scope ``convmlp_mm``. What the ``register_*`` decorators below register goes
into them *and* into the root:

- ``type='convmlp_mm.ConvMLP'`` is resolved by mmengine through the root's child with that scope;
- an unprefixed ``type='ConvMLP'`` built from the mmdet, mmseg or mmpretrain registries falls back to
  their parent, the root registry, because mmengine searches a registry and then its parents.

Registering in the root rather than in ``mmdet.registry.MODELS`` etc. is what lets ``import convmlp_mm``
avoid importing mmdet or mmseg: a user with only one of them installed can still use the backbone.
"""
from typing import Callable, TypeVar

from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import Registry

MODELS = Registry('model', parent=MMENGINE_MODELS, scope='convmlp_mm', locations=['convmlp_mm.models'])
TRANSFORMS = Registry('transform', parent=MMENGINE_TRANSFORMS, scope='convmlp_mm',
                      locations=['convmlp_mm.datasets'])
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, scope='convmlp_mm', locations=['convmlp_mm.engine'])
PARAM_SCHEDULERS = Registry('parameter scheduler', parent=MMENGINE_PARAM_SCHEDULERS, scope='convmlp_mm',
                            locations=['convmlp_mm.engine'])
LOOPS = Registry('loop', parent=MMENGINE_LOOPS, scope='convmlp_mm', locations=['convmlp_mm.engine'])
OPTIM_WRAPPERS = Registry('optim_wrapper', parent=MMENGINE_OPTIM_WRAPPERS, scope='convmlp_mm',
                          locations=['convmlp_mm.engine'])

ClassType = TypeVar('ClassType', bound=type)


def _registering_in(registry: Registry, root: Registry, what: str) -> Callable[[ClassType], ClassType]:
    def register(cls: ClassType) -> ClassType:
        registry.register_module(module=cls)
        root.register_module(module=cls)
        return cls
    register.__doc__ = f"Class decorator: register {what} in ``convmlp_mm``'s registry and in mmengine's root one."
    return register


register_model = _registering_in(MODELS, MMENGINE_MODELS, 'a model')
register_transform = _registering_in(TRANSFORMS, MMENGINE_TRANSFORMS, 'a data transform')
register_hook = _registering_in(HOOKS, MMENGINE_HOOKS, 'a Runner hook')
register_param_scheduler = _registering_in(PARAM_SCHEDULERS, MMENGINE_PARAM_SCHEDULERS, 'a parameter scheduler')
register_loop = _registering_in(LOOPS, MMENGINE_LOOPS, 'a Runner loop')
register_optim_wrapper = _registering_in(OPTIM_WRAPPERS, MMENGINE_OPTIM_WRAPPERS, 'an optimizer wrapper')
