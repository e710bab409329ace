"""Load checkpoints without ever running code from them, on every supported torch and mmengine.

A ``torch.save`` file is a pickle, and unpickling can call any function the file names. torch's own
protection (``weights_only``) is the default only from torch 2.6, can be extended only from 2.4, and the
loaders in front of it differ: upstream mmengine 0.10.7 calls ``torch.load`` without ``weights_only`` (so on
torch < 2.6 any pickle runs), and the OneDL fork's mmengine retries a refused file with
``weights_only=False``. So convmlp_mm does not rely on either: :func:`load_checkpoint_file` unpickles with
an allow-list of its own (:class:`RestrictedUnpickler`, handed to ``torch.load`` as its pickle module), the
same on torch 2.1 and 2.14, and ``import convmlp_mm`` makes it mmengine's loader for local files and
http(s) URLs, the two every Runner resume/``load_from``, every inferencer, ``load_checkpoint()`` and
``init_cfg=dict(type='Pretrained')`` go through.

Allowed: tensors, parameters and their storages, plain Python containers and numbers, numpy arrays and
scalars, and mmengine's ``HistoryBuffer`` (the message hub in every checkpoint mmengine writes). A file
that names any other global is refused with :class:`UnsafeCheckpointError`, which lists every such global
(read by a dry pass that calls nothing) and points to the re-save route.
"""
import _compat_pickle
import collections
import functools
import io
import os
import pickle
import zipfile
from argparse import Namespace
from pathlib import Path
from types import ModuleType
from typing import IO, Any, Callable, Dict, Iterable, List, Tuple, Union

import numpy as np
import torch
from mmengine.dist import barrier, get_dist_info
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

from .compat import numpy_dtype_classes, numpy_multiarray, tensor_rebuild_functions
from .errors import UserError

#: Where the documentation explains how to re-save a file you trust as plain weights.
RESAVE_DOCS = 'docs/training.md#checkpoints-that-hold-other-objects'

FileLike = Union[str, os.PathLike, IO[bytes]]


class UnsafeCheckpointError(UserError, RuntimeError):
    """A checkpoint holds objects other than tensors and plain data, so it was not loaded."""


class _RefusedGlobal(pickle.UnpicklingError):
    """Raised by :meth:`RestrictedUnpickler.find_class` for a global that is not allowed."""


def _history_buffer_attribute(owner: Any, name: str) -> Any:
    """Stands in for ``builtins.getattr`` while unpickling.

    A HistoryBuffer pickles its statistics methods as ``getattr(HistoryBuffer, 'min')`` etc.; only
    those attributes are handed out, so the allowed name cannot reach anything else.
    """
    # The four defaults are registered lazily (at the first HistoryBuffer()), so name them here.
    allowed = {'min', 'max', 'mean', 'current', *HistoryBuffer._statistics_methods}
    if owner is HistoryBuffer and name in allowed:
        return getattr(owner, name)
    raise _RefusedGlobal(f'checkpoint asks for getattr({owner!r}, {name!r}), which only '
                         f'HistoryBuffer statistics may use')


@functools.lru_cache(maxsize=None)
def _allowed_globals() -> Dict[Tuple[str, str], Any]:
    """(module, name) -> object for every global a safe checkpoint may name."""
    multiarray = numpy_multiarray()
    allowed: Dict[Tuple[str, str], Any] = {
        ('collections', 'OrderedDict'): collections.OrderedDict,
        ('builtins', 'set'): set, ('builtins', 'frozenset'): frozenset, ('builtins', 'slice'): slice,
        ('builtins', 'complex'): complex, ('builtins', 'bytearray'): bytearray,
        ('builtins', 'getattr'): _history_buffer_attribute,
        # protocol 2 (torch.save's default) pickles bytes, e.g. numpy arrays' data, as encode(str, 'latin1')
        ('_codecs', 'encode'): _encode_latin1,
        ('torch', 'Size'): torch.Size, ('torch', 'device'): torch.device, ('torch', 'Tensor'): torch.Tensor,
        ('torch.nn.parameter', 'Parameter'): torch.nn.Parameter,
        ('torch._tensor', '_rebuild_from_type_v2'): torch._tensor._rebuild_from_type_v2,
        ('numpy', 'ndarray'): np.ndarray, ('numpy', 'dtype'): np.dtype,
        ('mmengine.logging.history_buffer', 'HistoryBuffer'): HistoryBuffer,
        ('argparse', 'Namespace'): Namespace,  # timm's training checkpoints: plain values
    }
    for name, function in tensor_rebuild_functions().items():
        allowed[('torch._utils', name)] = function
    for name in dir(torch):  # dtypes (torch.float32), layouts and memory formats are plain values
        value = getattr(torch, name, None)
        if isinstance(value, (torch.dtype, torch.layout, torch.memory_format)):
            allowed[('torch', name)] = value
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):  # numpy 1.x and 2.x write either
        allowed[(module, '_reconstruct')] = multiarray._reconstruct
        allowed[(module, 'scalar')] = multiarray.scalar
    for cls in numpy_dtype_classes():
        allowed[('numpy.dtypes', cls.__name__)] = cls
    return allowed


def _encode_latin1(text: str, encoding: str = 'latin1') -> bytes:
    if encoding not in ('latin1', 'latin-1'):
        raise _RefusedGlobal(f'checkpoint asks for _codecs.encode(..., {encoding!r}); only latin1 is used by pickle')
    return text.encode('latin1')


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that hands out only the globals of :func:`_allowed_globals`.

    A pickle can call only what ``find_class`` gives it, so refusing every other global there is what
    keeps a file from running code (the approach of Python's "Restricting Globals" and of torch's
    ``weights_only``). Storages are resolved by ``torch.load`` before this is asked.
    """

    def find_class(self, module: str, name: str) -> Any:
        module, name = python3_name(module, name)
        try:
            return _allowed_globals()[(module, name)]
        except KeyError:
            raise _RefusedGlobal(f'{module}.{name} is not allowed') from None


def python3_name(module: str, name: str) -> Tuple[str, str]:
    """A global's name as Python 3 calls it: protocol 2 (torch.save's default) writes Python 2 names, such
    as ``__builtin__.getattr``, which pickle's own ``find_class`` maps the same way."""
    module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def _pickle_module(unpickler: type) -> ModuleType:
    module = ModuleType(f'convmlp_mm_{unpickler.__name__}')
    module.Unpickler = unpickler
    module.UnpicklingError = pickle.UnpicklingError
    module.load = lambda file, **kwargs: unpickler(file, **kwargs).load()
    return module


RESTRICTED_PICKLE = _pickle_module(RestrictedUnpickler)


def load_checkpoint_file(file: FileLike, map_location: Any = 'cpu') -> Any:
    """``torch.load(file)`` through :class:`RestrictedUnpickler`: never runs code from the file.

    Raises:
        UnsafeCheckpointError: the file names a global that is not allowed (nothing from it was used).
    """
    try:
        # weights_only=False only because torch refuses a custom pickle_module with its own restriction on.
        return torch.load(file, map_location=map_location, pickle_module=RESTRICTED_PICKLE, weights_only=False)
    except _RefusedGlobal as err:
        raise refused_checkpoint_error(file, err) from None


class _RecordingUnpickler(pickle.Unpickler):
    """Runs a pickle with inert stand-ins for every global, recording the names; calls nothing real."""

    def __init__(self, file: IO[bytes], **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self.names: List[str] = []

    def find_class(self, module: str, name: str) -> Any:
        self.names.append('.'.join(python3_name(module, name)))
        return _Inert

    def persistent_load(self, pid: Any) -> Any:
        return None


class _Inert:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> '_Inert':
        return _Inert()


def _pickles_in(file: FileLike) -> Iterable[bytes]:
    if isinstance(file, (str, os.PathLike)) and zipfile.is_zipfile(file):
        with zipfile.ZipFile(file) as archive:
            for name in archive.namelist():
                if name.endswith('.pkl'):
                    yield archive.read(name)


def unsafe_globals(file: FileLike) -> List[str]:
    """The globals a checkpoint names that :class:`RestrictedUnpickler` refuses, found without calling any."""
    allowed = {f'{module}.{name}' for module, name in _allowed_globals()}
    names = set()
    for data in _pickles_in(file):
        recorder = _RecordingUnpickler(io.BytesIO(data))
        try:
            recorder.load()
        except Exception:  # a stand-in cannot satisfy every opcode; the names seen so far still count
            pass
        names.update(n for n in recorder.names if n not in allowed and 'Storage' not in n)
    return sorted(names)


def refused_checkpoint_error(file: FileLike, err: Exception) -> UnsafeCheckpointError:
    """The error to raise when :class:`RestrictedUnpickler` refused ``file`` (``err`` is its refusal)."""
    names = unsafe_globals(file)
    if names:
        what = f'it refers to {", ".join(names)}, which {"is" if len(names) == 1 else "are"} not tensors or plain data'
    else:
        what = f'unpickling it was refused ({err})'
    where = file if isinstance(file, (str, os.PathLike)) else 'the checkpoint'
    return UnsafeCheckpointError(
        f'{where} was not loaded: {what}; loading such a file can run code. Nothing from it was used. '
        f'If you trust this file (you made it, or its source is one you trust), re-save its weights once as '
        f'plain tensors, as {RESAVE_DOCS} shows, and load the re-saved file.')


# --- mmengine's loaders --------------------------------------------------------------------------------

def _load_local(filename: str, map_location: Any) -> Any:
    """mmengine's ``load_from_local``, unpickling through :func:`load_checkpoint_file`."""
    filename = os.path.expanduser(filename)
    if not os.path.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return load_checkpoint_file(filename, map_location)


def _load_url(url: str, map_location: Any, model_dir: str = None, progress: bool = True) -> Any:
    """mmengine's ``load_from_http``: download once into torch hub's checkpoint folder (rank 0 first), then
    unpickle through :func:`load_checkpoint_file`."""
    folder = Path(model_dir or os.path.join(torch.hub.get_dir(), 'checkpoints'))
    target = folder / os.path.basename(url.split('?', 1)[0])
    rank, world_size = get_dist_info()
    for turn in ((0,), range(1, world_size)):
        if rank in turn and not target.is_file():
            folder.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(url, str(target), progress=progress)
        if world_size > 1:
            barrier()
    return load_checkpoint_file(str(target), map_location)


LOADERS: Dict[Tuple[str, ...], Callable[..., Any]] = {('',): _load_local, ('http://', 'https://'): _load_url}


def install_safe_loaders() -> None:
    """Make :func:`load_checkpoint_file` mmengine's loader for local files and http(s) URLs (process-wide,
    as ``import convmlp_mm`` does)."""
    for prefixes, loader in LOADERS.items():
        CheckpointLoader.register_scheme(prefixes=list(prefixes), loader=loader, force=True)
