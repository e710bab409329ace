"""Let torch's ``weights_only`` loading read the checkpoints that mmengine writes, and nothing more.

torch >= 2.6 loads with ``weights_only=True`` by default, and mmengine 0.10.7 does not say otherwise,
so ``--resume``, ``load_from`` and ``tools/test.py`` fail on mmengine's own checkpoints: their message
hub pickles ``HistoryBuffer`` objects and numpy arrays/scalars. Turning ``weights_only`` off would let a
checkpoint run arbitrary code; instead the few globals that mmengine's checkpoints reference are
allow-listed. A checkpoint referencing any other global is still refused by torch, and the refusal is
turned into :class:`UnsafeCheckpointError`: one message that names the file and the offending globals and
points to the re-save route, instead of torch's advice to load the file with ``weights_only=False``.
"""
import pickle
from typing import Any, List

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

#: Where the README explains how to re-save a file you trust as plain weights.
RESAVE_DOCS = 'README.md#checkpoints-that-hold-other-objects'


class UnsafeCheckpointError(RuntimeError):
    """A checkpoint holds objects other than tensors and plain data, so it was not loaded."""

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
    """Allow-list (process-wide, for ``weights_only`` loads) the globals of mmengine's checkpoints, and make
    mmengine's loader of local files report a refused file as :class:`UnsafeCheckpointError`."""
    torch.serialization.add_safe_globals(MMENGINE_CHECKPOINT_GLOBALS)
    CheckpointLoader.register_scheme(prefixes='', loader=_load_local_checkpoint, force=True)


# mmengine's loader for paths without a URL scheme: every Runner resume/load_from, every inferencer and
# load_checkpoint() reads local files through it, so wrapping it reports a refused file the same way in all.
_MMENGINE_LOAD_LOCAL = CheckpointLoader._schemes['']


def _load_local_checkpoint(filename: str, map_location: Any) -> Any:
    try:
        return _MMENGINE_LOAD_LOCAL(filename, map_location)
    except pickle.UnpicklingError as err:
        raise refused_checkpoint_error(filename, err) from None  # not torch's text: it advises the unsafe way out


def unsafe_globals(filename: str) -> List[str]:
    """The globals in a ``torch.save`` file that ``weights_only`` loading refuses, read without unpickling."""
    try:
        return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(filename))
    except Exception:  # not a zip checkpoint (legacy format) or unreadable: the caller falls back
        return []


def refused_checkpoint_error(filename: str, err: Exception) -> UnsafeCheckpointError:
    """The error to raise when ``weights_only`` loading refused ``filename`` (``err`` is torch's error)."""
    names = unsafe_globals(filename)
    if names:
        what = f'it refers to {", ".join(names)}, which {"is" if len(names) == 1 else "are"} not tensors or plain data'
    else:  # an allow-listed name used in a way that is refused, e.g. getattr on something else
        reason = str(err).split('WeightsUnpickler error:', 1)[-1].strip().splitlines()[0]
        what = f'unpickling it was refused ({reason})'
    return UnsafeCheckpointError(
        f'{filename} was not loaded: {what}; loading such a file can run code. Nothing from it was used. '
        f'If you trust this file (you made it, or its source is one you trust), re-save its weights once as '
        f'plain tensors, as {RESAVE_DOCS} shows, and load the re-saved file.')
