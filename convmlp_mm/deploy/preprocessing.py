"""The pre-processing of an exported model, written beside the .onnx file as JSON and applied in numpy.

Pre-processing stays outside the graph on purpose: images of a batch differ in size, and the libraries
normalise each image *before* padding it (the padding is 0 after normalisation), which a graph taking one
padded tensor cannot redo. The resize is the config's test pipeline's, also outside. So the sidecar holds
what the config's ``data_preprocessor`` does (mean/std, BGR→RGB, padding) and what the runner needs to
turn outputs into results (task, class names, palette); :func:`preprocess` does exactly what
mmdet's/mmseg's/mmpretrain's data pre-processors do at test time.
"""
import json
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..errors import UserError

FORMAT = 'convmlp_mm.onnx/1'


def sidecar_path(onnx_file: str) -> Path:
    """``model.onnx`` → ``model.onnx.json``."""
    return Path(str(onnx_file) + '.json')


def preprocessing_of(cfg_model: dict, task: str) -> dict:
    """The test-time pre-processing that a model config's ``data_preprocessor`` specifies."""
    pre = dict(cfg_model.get('data_preprocessor') or {})
    bgr_to_rgb = bool(pre.get('bgr_to_rgb', pre.get('to_rgb', False)))
    if task == 'segmentation':
        # mmseg pads test batches only when its data pre-processor has a test_cfg (size or size_divisor).
        test_cfg = pre.get('test_cfg') or {}
        size_divisor, pad_size = test_cfg.get('size_divisor'), test_cfg.get('size')
        pad_value = pre.get('pad_val', 0)
    else:
        size_divisor, pad_size = pre.get('pad_size_divisor', 1), None
        pad_value = pre.get('pad_value', 0)
    mean, std = pre.get('mean'), pre.get('std')
    return dict(mean=None if mean is None else [float(m) for m in mean],
                std=None if std is None else [float(s) for s in std], bgr_to_rgb=bgr_to_rgb,
                size_divisor=int(size_divisor) if size_divisor else None,
                pad_size=list(pad_size) if pad_size else None, pad_value=float(pad_value))


def write_sidecar(onnx_file: str, **fields) -> Path:
    path = sidecar_path(onnx_file)
    path.write_text(json.dumps(dict(format=FORMAT, **fields), indent=2))
    return path


class SidecarError(UserError, ValueError):
    """The ``.onnx.json`` beside an exported model is missing or of another format."""


def read_sidecar(onnx_file: str) -> dict:
    path = sidecar_path(onnx_file)
    if not path.is_file():
        raise SidecarError(f'{path} is missing: tools/deployment/export_onnx.py writes it beside {onnx_file}; '
                           f'it holds the pre-processing and class names the runner needs')
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise SidecarError(f'{path} is not JSON ({err}); export the model again') from None
    if meta.get('format') != FORMAT:
        raise SidecarError(f'{path}: format {meta.get("format")!r}, expected {FORMAT!r}; export the model again')
    return meta


def preprocess(images: Sequence[np.ndarray], pre: dict) -> Tuple[np.ndarray, List[Tuple[int, int]]]:
    """A float32 NCHW batch from CHW images in the channel order they were loaded in (BGR for OpenCV),
    and each image's (height, width) before padding.

    Each image: to float32, BGR→RGB if asked, ``(x - mean) / std``; then all are padded at the bottom and
    right with ``pad_value`` to the batch's largest size rounded up to ``size_divisor`` (or to ``pad_size``).
    """
    mean = None if pre['mean'] is None else np.asarray(pre['mean'], np.float32).reshape(-1, 1, 1)
    std = None if pre['std'] is None else np.asarray(pre['std'], np.float32).reshape(-1, 1, 1)
    normalised = []
    for image in images:
        x = np.asarray(image, dtype=np.float32)
        if pre['bgr_to_rgb'] and x.shape[0] == 3:
            x = x[::-1]
        if mean is not None:
            x = (x - mean) / std
        normalised.append(x)
    sizes = [(x.shape[1], x.shape[2]) for x in normalised]
    height, width = (max(s[0] for s in sizes), max(s[1] for s in sizes))
    if pre.get('pad_size'):
        height, width = max(height, pre['pad_size'][0]), max(width, pre['pad_size'][1])
    divisor: Optional[int] = pre.get('size_divisor')
    if divisor and divisor > 1:
        height, width = -(-height // divisor) * divisor, -(-width // divisor) * divisor
    batch = np.full((len(normalised), normalised[0].shape[0], height, width), pre['pad_value'], np.float32)
    for target, x in zip(batch, normalised):
        target[:, :x.shape[1], :x.shape[2]] = x
    return batch, sizes
