"""Segmentation configs: parameter counts, forward passes, clear errors, and a train -> test round trip."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from PIL import Image

import convmlp_mm  # noqa: F401
from convmlp_mm.datasets.transforms import CheckSegLabels, LabelOutOfRangeError

from ..conftest import ROOT, run_tool

SEG = ROOT / 'configs' / 'segmentation'
TOY = SEG / 'toy' / 'fpn_convmlp_s_toy.py'
PAPER_PARAMS = {'s': 12.8, 'm': 21.1, 'l': 46.3}  # paper, Table 5 (millions, rounded to 0.1M)


def build_segmentor(config: Path, **overrides):
    from mmseg.registry import MODELS
    cfg = Config.fromfile(str(config))
    cfg.merge_from_dict(overrides)
    init_default_scope('mmseg')
    return revert_sync_batchnorm(MODELS.build(cfg.model))  # SyncBN needs a process group


@pytest.mark.parametrize('arch', ['s', 'm', 'l'])
def test_config_builds_with_paper_parameter_count(arch):
    config = SEG / f'fpn_convmlp_{arch}_ade20k.py'
    model = build_segmentor(config)
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 1) == PAPER_PARAMS[arch]
    cfg = Config.fromfile(str(config))
    assert cfg.train_cfg.max_iters == 40000 and cfg.model.decode_head.num_classes == 150
    assert cfg.optim_wrapper.optimizer == dict(type='AdamW', lr=2e-4, weight_decay=1e-4)
    assert cfg.param_scheduler[0]['type'] == 'PolyLR' and cfg.param_scheduler[0]['power'] == 0.9
    assert cfg.model.pretrained is None
    assert cfg.model.backbone.init_cfg.checkpoint.endswith(f'convmlp_{arch}_imagenet.pth')
    assert {'type': 'CheckSegLabels', 'num_classes': 150} in cfg.train_dataloader.dataset.pipeline


@pytest.mark.parametrize('size', [(512, 512), (333, 517)])
def test_forward_loss_and_predict(size):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    model = build_segmentor(SEG / 'fpn_convmlp_s_ade20k.py', **{'model.backbone.init_cfg': None})
    model.init_weights()
    h, w = size
    samples = []
    for _ in range(2):
        sample = SegDataSample(metainfo=dict(img_shape=size, ori_shape=size, pad_shape=size))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, 150, (1, h, w)))
        samples.append(sample)
    packed = dict(inputs=[torch.randint(0, 256, (3, h, w), dtype=torch.uint8) for _ in range(2)],
                  data_samples=samples)
    model.train()
    losses = model(**model.data_preprocessor(packed, True), mode='loss')
    total, _ = model.parse_losses(losses)
    assert torch.isfinite(total)
    total.backward()
    model.eval()
    with torch.no_grad():
        results = model(**model.data_preprocessor(packed, False), mode='predict')
    assert [tuple(r.pred_sem_seg.data.shape) for r in results] == [(1, h, w)] * 2
    assert int(results[0].pred_sem_seg.data.max()) < 150


def test_label_check_names_file_and_values():
    check = CheckSegLabels(num_classes=4)
    ok = dict(gt_seg_map=np.array([[0, 3], [255, 1]], dtype=np.uint8), seg_map_path='a.png')
    assert check(ok) is ok
    with pytest.raises(LabelOutOfRangeError, match=r'b\.png has label\(s\) \[4, 9\] outside 0\.\.3'):
        check(dict(gt_seg_map=np.array([[0, 4], [9, 255]], dtype=np.uint8), seg_map_path='b.png'))


def test_train_without_ade20k_explains_where_it_looked(tmp_path):
    proc = run_tool('train.py', str(SEG / 'fpn_convmlp_s_ade20k.py'), cwd=tmp_path, check=False)
    assert proc.returncode != 0 and 'ADE20K not found' in proc.stderr
    assert str(tmp_path / 'data' / 'ade' / 'ADEChallengeData2016' / 'images' / 'training') in proc.stderr
    assert 'Traceback' not in proc.stderr


def toy_options(data: Path) -> list:
    return [f'{loader}.dataset.data_root={data}/' for loader in
            ('train_dataloader', 'val_dataloader', 'test_dataloader')] + [
        'train_cfg.max_iters=4', 'train_cfg.val_interval=4', 'default_hooks.checkpoint.interval=4',
        'default_hooks.logger.interval=1', 'train_dataloader.batch_size=2']


def test_labels_out_of_range_stop_training_with_file_name(toy_ade, tmp_path):
    proc = run_tool('train.py', str(TOY), '--work-dir', str(tmp_path), '--cfg-options', *toy_options(toy_ade),
                    'model.decode_head.num_classes=3',
                    'train_dataloader.dataset.pipeline.2.num_classes=3', check=False)
    assert proc.returncode != 0 and 'outside 0..2' in proc.stderr and '.png' in proc.stderr
    assert 'Traceback' not in proc.stderr


@pytest.mark.matrix
@pytest.mark.e2e
def test_train_checkpoint_test_round_trip(toy_ade, tmp_path):
    work = tmp_path / 'work'
    run_tool('train.py', str(TOY), '--work-dir', str(work), '--cfg-options', *toy_options(toy_ade))
    ckpt = work / 'iter_4.pth'
    assert ckpt.is_file()
    vis = tmp_path / 'vis'
    run_tool('test.py', str(TOY), str(ckpt), '--work-dir', str(tmp_path / 'test'), '--show-dir', str(vis),
             '--cfg-options', *toy_options(toy_ade))
    metrics = json.loads(next((tmp_path / 'test').glob('*/*.json')).read_text())
    assert 0 <= metrics['mIoU'] <= 100
    drawn = sorted(vis.rglob('*.png'))
    assert len(drawn) == 2 and Image.open(drawn[0]).size[1] == 64
