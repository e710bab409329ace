"""What ``import convmlp_mm`` checks first: that torch, mmengine and mmcv are there and new enough.

Not in ``install_requires`` (the OneDL fork provides the same modules under other distribution names), so
this is where a user learns what to install. It imports none of them until it has found them.
"""
import importlib
import importlib.util
import re
from typing import Dict, Tuple

from .errors import UserError

#: The oldest releases this package is tested with (docs/get_started.md, Tested environments).
MIN_VERSIONS: Dict[str, str] = {'torch': '2.1.0', 'mmengine': '0.10.0', 'mmcv': '2.0.0'}


class IncompatibleEnvironmentError(UserError, ImportError):
    """A library convmlp_mm needs is missing or older than the tested range."""


def version_tuple(version: str) -> Tuple[int, ...]:
    """``'2.1.2+cu121'`` -> ``(2, 1, 2)``; release candidates count as their release."""
    return tuple(int(part) for part in re.findall(r'\d+', version.split('+')[0])[:3])


def check_environment() -> None:
    """Raise :class:`IncompatibleEnvironmentError` naming what is missing or too old."""
    problems = []
    for module, minimum in MIN_VERSIONS.items():
        if importlib.util.find_spec(module) is None:
            problems.append(f'{module} is not installed')
            continue
        installed = importlib.import_module(module).__version__
        if version_tuple(installed) < version_tuple(minimum):
            problems.append(f'{module} {installed} is older than {minimum}')
    if problems:
        raise IncompatibleEnvironmentError(
            f'convmlp_mm needs torch>={MIN_VERSIONS["torch"]}, mmengine>={MIN_VERSIONS["mmengine"]} and '
            f'mmcv>={MIN_VERSIONS["mmcv"]} (upstream or the OneDL fork: onedl-mmengine, onedl-mmcv): '
            f'{"; ".join(problems)}. Install them first, e.g. `pip install mmengine` and mmcv as '
            f'https://mmcv.readthedocs.io/en/latest/get_started/installation.html says for your torch.')
