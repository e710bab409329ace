"""Where this package's configs are: ``configs/`` of a clone (or an editable install), or the copy that a
wheel carries in ``convmlp_mm/.mim/configs`` (OpenMMLab's convention, which ``mim`` also reads; in a clone it is a
link to ``configs/``)."""
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def configs_root() -> Path:
    """The folder that holds ``detection/``, ``segmentation/`` and ``classification/``: a clone's own
    ``configs/`` first (the same files as its ``.mim/configs`` link, under the path users know)."""
    for root in (PACKAGE.parent / 'configs', PACKAGE / '.mim' / 'configs'):
        if (root / 'detection' / 'retinanet_convmlp_s_fpn.py').is_file():
            return root
    raise FileNotFoundError(f'convmlp_mm was installed without its configs: neither {PACKAGE.parent / "configs"} '
                            f'nor {PACKAGE / ".mim" / "configs"} exists; reinstall it with `pip install convmlp_mm` '
                            f'or from a clone')


def config_path(relative: str) -> str:
    """The absolute path of one of our configs, e.g. ``config_path('detection/_base_/default_runtime.py')``
    for a ``_base_`` line that works in a clone and in a wheel install alike."""
    path = configs_root() / relative
    if not path.is_file():
        raise FileNotFoundError(f'no config {relative!r} in {configs_root()}')
    return str(path)
