"""The official code's trained detectors (mmdet 2.x) and segmentors (mmseg 0.x) evaluate as they are.

Their files are what mmcv 1.x's ``save_checkpoint`` writes: ``state_dict`` (an OrderedDict with the modules'
``_metadata``), ``meta`` (mmcv/mmdet versions, the config's text, ``CLASSES``, ``PALETTE`` for mmseg,
epoch/iter, ``hook_msgs`` with numpy scores) and, unless published with publish_model.py, ``optimizer``.
The same weights saved the way mmengine does must give identical predictions through tools/test.py, and
the inferencers must take the class names from the old ``meta``.
"""
import pickle
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

import convmlp_mm  # noqa: F401  (weights_only loading of mmengine checkpoints)
from convmlp_mm.apis import build_from_config

from ..conftest import ROOT, run_tool, toy_options

pytestmark = pytest.mark.e2e

TOY_DET = ROOT / 'configs' / 'detection' / 'toy' / 'retinanet_convmlp_s_fpn_toy.py'
TOY_MASK = ROOT / 'configs' / 'detection' / 'toy' / 'mask_rcnn_convmlp_s_fpn_toy.py'
TOY_SEG = ROOT / 'configs' / 'segmentation' / 'toy' / 'fpn_convmlp_s_toy.py'
DET_CLASSES = ('square', 'circle', 'triangle')
SEG_CLASSES = ('background', 'square', 'circle', 'triangle')
SEG_PALETTE = [[0, 0, 0], [220, 20, 60], [0, 128, 255], [255, 200, 0]]


def trained_weights(config: Path) -> 'OrderedDict[str, torch.Tensor]':
    """Weights of the config's model unlike any initialization the Runner would make (so that a key that
    fails to load shows in the outputs)."""
    torch.manual_seed(1234)
    state = build_from_config(str(config)).state_dict()
    return OrderedDict((k, v + 0.02 * torch.randn_like(v) if v.is_floating_point() else v) for k, v in state.items())


def mmcv1_checkpoint(weights: 'OrderedDict[str, torch.Tensor]', library: str) -> dict:
    """A checkpoint in the layout of mmcv 1.x's save_checkpoint, as mmdet 2.x's or mmseg 0.x's train.py
    (with EvalHook and a CheckpointHook) fill it."""
    state_dict = OrderedDict((k, v.clone()) for k, v in weights.items())
    state_dict._metadata = OrderedDict((k.rsplit('.', 1)[0], {'version': 1}) for k in weights)
    meta = dict(env_info='sys.platform: linux\nPython: 3.8.10\nCUDA available: True\nPyTorch: 1.8.1',
                config="model = dict(type='RetinaNet', backbone=dict(type='DetConvMLPSmall'))",
                seed=0, exp_name='convmlp_s_1x.py', mmcv_version='1.3.8', time=time.asctime(),
                hook_msgs=dict(last_ckpt='work_dirs/convmlp/latest.pth', best_score=np.float64(0.372),
                               best_ckpt='work_dirs/convmlp/best.pth'))
    if library == 'mmdet':
        meta.update(mmdet_version='2.14.0+4d2c1e8', CLASSES=DET_CLASSES, epoch=12, iter=87960)
    else:
        meta.update(mmseg_version='0.16.0+1f8e3d0', CLASSES=SEG_CLASSES, PALETTE=SEG_PALETTE, epoch=1, iter=40000)
    params = [torch.nn.Parameter(v.clone()) for v in list(weights.values())[:3] if v.is_floating_point()]
    optimizer = torch.optim.AdamW(params, lr=1e-4, weight_decay=1e-4)
    sum(p.sum() for p in params).backward()
    optimizer.step()
    return dict(meta=meta, state_dict=state_dict, optimizer=optimizer.state_dict())


def mmengine_checkpoint(weights: 'OrderedDict[str, torch.Tensor]', classes, palette=None) -> dict:
    """The same weights as mmengine's Runner saves them (the parts a test run reads)."""
    dataset_meta = dict(classes=classes, **({'palette': palette} if palette else {}))
    return dict(meta=dict(dataset_meta=dataset_meta, epoch=12, iter=96, mmengine='0.10.7'), state_dict=weights)


def same(a, b) -> bool:
    """Deep equality of dumped predictions (dicts, lists, arrays, tensors)."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    return a == b


def predictions(config: Path, checkpoint: Path, options: list, out: Path) -> list:
    proc = run_tool('test.py', str(config), str(checkpoint), '--work-dir', str(out.parent / 'work'),
                    '--out', str(out), '--cfg-options', *options)
    log = proc.stdout + proc.stderr
    assert 'missing keys' not in log and 'unexpected key' not in log, log[-3000:]
    with open(out, 'rb') as f:
        return pickle.load(f)


def seg_options(data: Path) -> list:
    return [f'{loader}.dataset.data_root={data}/' for loader in ('val_dataloader', 'test_dataloader')]


@pytest.mark.parametrize('config', [TOY_DET, TOY_MASK, TOY_SEG], ids=['retinanet', 'mask_rcnn', 'semantic_fpn'])
def test_official_format_checkpoint_evaluates_like_the_mm3_one(config, tmp_path, request):
    library = 'mmseg' if config == TOY_SEG else 'mmdet'
    if library == 'mmdet':
        data = request.getfixturevalue('toy_coco')
        options = toy_options(data, config)
    else:
        data = request.getfixturevalue('toy_ade')
        options = seg_options(data)
    weights = trained_weights(config)
    official, ours = tmp_path / 'official.pth', tmp_path / 'mm3.pth'
    torch.save(mmcv1_checkpoint(weights, library), official)
    classes, palette = (DET_CLASSES, None) if library == 'mmdet' else (SEG_CLASSES, SEG_PALETTE)
    torch.save(mmengine_checkpoint(weights, classes, palette), ours)
    from_official = predictions(config, official, options, tmp_path / 'official' / 'out.pkl')
    from_ours = predictions(config, ours, options, tmp_path / 'mm3' / 'out.pkl')
    assert len(from_official) == len(from_ours) > 0
    assert same(from_official, from_ours)
    # And the weights did arrive: a run from the config's own initialization predicts something else.
    torch.save(mmengine_checkpoint(OrderedDict(), classes, palette), tmp_path / 'empty.pth')
    log = run_tool('test.py', str(config), str(tmp_path / 'empty.pth'), '--work-dir', str(tmp_path / 'w'), '--out',
                   str(tmp_path / 'init.pkl'), '--cfg-options', *options)
    with open(tmp_path / 'init.pkl', 'rb') as f:
        assert not same(pickle.load(f), from_ours), log.stdout[-1000:]


def test_inferencers_take_class_names_from_the_old_meta(tmp_path, toy_coco, toy_ade):
    from mmdet.apis import DetInferencer
    from mmengine.registry import DefaultScope
    from mmseg.apis import MMSegInferencer
    torch.save(mmcv1_checkpoint(trained_weights(TOY_DET), 'mmdet'), tmp_path / 'det.pth')
    torch.save(mmcv1_checkpoint(trained_weights(TOY_SEG), 'mmseg'), tmp_path / 'seg.pth')
    with DefaultScope.overwrite_default_scope('mmdet'):
        det = DetInferencer(model=str(TOY_DET), weights=str(tmp_path / 'det.pth'), device='cpu', show_progress=False)
    assert tuple(det.model.dataset_meta['classes']) == DET_CLASSES
    with DefaultScope.overwrite_default_scope('mmseg'):
        seg = MMSegInferencer(model=str(TOY_SEG), weights=str(tmp_path / 'seg.pth'), device='cpu')
    assert tuple(seg.model.dataset_meta['classes']) == SEG_CLASSES
    assert [list(c) for c in seg.model.dataset_meta['palette']] == SEG_PALETTE
    # tools/demo.py, as a user runs the released RetinaNet on an image
    image = sorted((toy_coco / 'val').glob('*.png'))[0]
    proc = run_tool('demo.py', str(image), str(TOY_DET), str(tmp_path / 'det.pth'), '--out-dir', str(tmp_path / 'out'))
    assert 'wrote the images' in proc.stdout and len(list((tmp_path / 'out' / 'vis').iterdir())) == 1
