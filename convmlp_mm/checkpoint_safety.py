"""Let torch's ``weights_only`` loading read the checkpoints that mmengine writes, and nothing more.

torch >= 2.6 loads with ``weights_only=True`` by default, and mmengine 0.10.7 does not say otherwise,
so ``--resume``, ``load_from`` and ``tools/test.py`` fail on mmengine's own checkpoints: their message
hub pickles ``HistoryBuffer`` objects and numpy arrays/scalars. Turning ``weights_only`` off would let a
checkpoint run arbitrary code; instead the few globals that mmengine's checkpoints reference are
allow-listed. A checkpoint referencing any other global is still refused by torch.
"""
import pickle
from typing import Any

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

_multiarray = np._core.multiarray if hasattr(np, '_core') else np.core.multiarray


def _history_buffer_attribute(owner: Any, name: str) -> Any:
    """Stands in for ``builtins.getattr`` while unpickling.

    A HistoryBuffer pickles its statistics methods as ``getattr(HistoryBuffer, 'min')`` etc.; only
    those attributes are handed out, so the allow-listed name cannot reach anything else.
    """
    # The four defaults are registered lazily (at the first HistoryBuffer()), so name them here.
    allowed = {'min', 'max', 'mean', 'current', *HistoryBuffer._statistics_methods}
    if owner is HistoryBuffer and name in allowed:
        return getattr(owner, name)
    raise pickle.UnpicklingError(f'checkpoint asks for getattr({owner!r}, {name!r}), which only '
                                 f'HistoryBuffer statistics may use; refusing to load it')


MMENGINE_CHECKPOINT_GLOBALS = [
    HistoryBuffer,
    np.ndarray,
    np.dtype,
    _multiarray._reconstruct,
    _multiarray.scalar,
    # The same functions as numpy 1.x names them in older checkpoints.
    (_multiarray._reconstruct, 'numpy.core.multiarray._reconstruct'),
    (_multiarray.scalar, 'numpy.core.multiarray.scalar'),
    (_history_buffer_attribute, 'builtins.getattr'),
    # Unpickled dtypes are instances of these classes (e.g. numpy.dtypes.Float64DType); plain data.
    *[cls for cls in vars(np.dtypes).values() if isinstance(cls, type) and issubclass(cls, np.dtype)],
]


def allow_mmengine_checkpoints() -> None:
    """Allow-list (process-wide, for ``weights_only`` loads) the globals of mmengine's checkpoints."""
    torch.serialization.add_safe_globals(MMENGINE_CHECKPOINT_GLOBALS)
