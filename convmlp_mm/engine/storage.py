"""Checkpoint files that are either whole or absent, and finding the newest whole one to resume from."""
import glob
import os.path as osp
import re
import zipfile
from pathlib import Path
from typing import Optional, Union

from mmengine.fileio import LocalBackend, register_backend

from ..fileio import replace_atomically


class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend, but a file is written to a temporary name in the same folder,
    flushed to disk and then renamed over the target. A crash while saving leaves the previous file (or
    none) under the target name, never a truncated one. Use it with
    ``default_hooks.checkpoint.backend_args=dict(backend='atomic_local')`` (the configs' default_runtime.py sets it).
    """

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        _write_atomically(obj, str(filepath))

    def put_text(self, obj: str, filepath: Union[str, Path], encoding: str = 'utf-8') -> None:
        _write_atomically(obj.encode(encoding), str(filepath))


def _write_atomically(data: bytes, filepath: str) -> None:
    replace_atomically(lambda tmp: tmp.write_bytes(data), filepath)
    folder, prefix = osp.dirname(osp.abspath(filepath)), f'.{osp.basename(filepath)}.'
    # A writer killed mid-write (SIGKILL, OOM killer) cannot clean up and leaves its temporary file, as
    # big as a checkpoint. Only one process writes a given checkpoint name (rank 0), so once this write
    # has landed, any other temporary file for the same name belongs to a dead writer.
    for orphan in Path(folder).glob(f'{glob.escape(prefix)}*.tmp'):
        orphan.unlink(missing_ok=True)


register_backend('atomic_local', AtomicLocalBackend)

_CHECKPOINT_NAME = re.compile(r'(epoch|iter)_(\d+)\.pth$')


def is_whole_checkpoint(path: str) -> bool:
    """Whether ``path`` is a complete ``torch.save`` file: a zip archive whose members all pass their CRC."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None
    except (OSError, zipfile.BadZipFile):
        return False


def named_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint that mmengine's ``last_checkpoint`` file in ``work_dir`` names, if there is one."""
    pointer = osp.join(work_dir, 'last_checkpoint')
    return (Path(pointer).read_text().strip() or None) if osp.isfile(pointer) else None


def latest_valid_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint to resume from: the one ``last_checkpoint`` names if it is whole, else the newest
    whole ``epoch_*.pth`` / ``iter_*.pth`` in ``work_dir`` (None if there is none)."""
    named = named_checkpoint(work_dir)
    if named and osp.isfile(named) and is_whole_checkpoint(named):
        return named
    found = [(int(m.group(2)), p) for p in Path(work_dir).glob('*.pth')
             if (m := _CHECKPOINT_NAME.search(p.name))]
    for _, path in sorted(found, reverse=True):
        if is_whole_checkpoint(str(path)):
            return str(path)
    return None
