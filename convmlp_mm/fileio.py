"""Files that appear whole or not at all: checkpoints, converted weights, exported models."""
import os
import tempfile
from pathlib import Path
from typing import Callable, Union


def replace_atomically(write: Callable[[Path], None], target: Union[str, Path]) -> None:
    """Call ``write(tmp)`` for a temporary file beside ``target``, flush it to disk and rename it over
    ``target`` (atomic on POSIX within one file system). A failure or crash leaves the previous file (or
    none) under the target name, never a truncated one; the temporary file is named ``.<target name>.*.tmp``.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{target.name}.', suffix='.tmp', dir=target.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, 'rb+') as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
