"""Whole models exported to ONNX (tools/deployment/export_onnx.py --config) give PyTorch's answers through the user's
doors: tools/test.py on the .onnx file (metrics and --out predictions) and tools/demo.py."""
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from convmlp_mm.apis import deploy_config_of, reparameterize
from convmlp_mm.checkpoint_safety import load_checkpoint_file
from convmlp_mm.deploy import pair_detections

from ..conftest import ROOT, random_checkpoint, run_tool

pytestmark = pytest.mark.e2e

CONFIGS = {
    'retinanet': 'configs/detection/toy/retinanet_convmlp_s_fpn_toy.py',
    'mask_rcnn': 'configs/detection/toy/mask_rcnn_convmlp_s_fpn_toy.py',
    'semantic_fpn': 'configs/segmentation/toy/fpn_convmlp_s_toy.py',
    'classifier': 'configs/classification/toy/convmlp_s_toy.py',
}
TASKS = {'retinanet': 'detection', 'mask_rcnn': 'detection', 'semantic_fpn': 'segmentation',
         'classifier': 'classification'}
METRICS = {'retinanet': 'coco/bbox_mAP', 'mask_rcnn': 'coco/segm_mAP', 'semantic_fpn': 'mIoU',
           'classifier': 'accuracy/top1'}
#: The layers that decide (scores, classes) get weights that spread their outputs.
DECISIVE = {'retinanet': ('bbox_head.retina_cls',), 'semantic_fpn': ('decode_head.conv_seg',),
            'classifier': ('head.fc',),
            'mask_rcnn': ('rpn_head.rpn_cls', 'roi_head.bbox_head.fc_cls', 'roi_head.mask_head.conv_logits')}


def data_options(name: str, data: Path) -> list:
    opts = [f'test_dataloader.dataset.data_root={data}/', 'test_dataloader.batch_size=2']
    if TASKS[name] == 'detection':
        ann = data / 'annotations' / 'instances_val.json'
        opts += [f'test_evaluator.ann_file={ann}']
    return opts


def decisive_checkpoint(name: str, path: Path) -> Path:
    """Random weights whose outputs are spread out (no near-ties between scores or classes), so that
    PyTorch and onnxruntime must agree on every decision: a freshly initialised RetinaNet scores every
    anchor about 0.01 (its prior), below mmdet's 0.05 threshold, and ties everywhere."""
    random_checkpoint(CONFIGS[name], path)
    ckpt = load_checkpoint_file(path)
    state = ckpt['state_dict']
    generator = torch.Generator().manual_seed(0)
    for key in [k for k in state if k.startswith(DECISIVE[name])]:
        state[key] = torch.randn(state[key].shape, generator=generator) * (0.3 if key.endswith('weight') else 1.0)
    torch.save(ckpt, path)
    return path


@pytest.fixture(scope='module')
def data(toy_coco, toy_ade, toy_cls):
    return {'detection': toy_coco, 'segmentation': toy_ade, 'classification': toy_cls}


def run_test(name: str, model: Path, data: Path, out: Path) -> dict:
    proc = run_tool('test.py', str(ROOT / CONFIGS[name]), str(model), '--work-dir', str(out.parent / out.stem),
                    '--out', str(out), '--cfg-options', *data_options(name, data))
    text = proc.stdout + proc.stderr
    key = METRICS[name]
    value = float(text.split(f'{key}:')[-1].split()[0])
    with open(out, 'rb') as f:
        return dict(metric=value, predictions=pickle.load(f))


def compare_detections(expected: list, got: list) -> None:
    """Each image's detections pair up one to one (``pair_detections``: scores equal to float rounding may
    come in another order): same label, score within 1e-4, box within 1e-3 of the image size, and (Mask
    R-CNN) the same mask pixels but for 0.1%."""
    from pycocotools import mask as coco_mask
    for image_pt, image_ort in zip(expected, got):
        pt, ort = image_pt['pred_instances'], image_ort['pred_instances']
        labels_pt, scores_pt, boxes_pt = (np.asarray(pt[k]) for k in ('labels', 'scores', 'bboxes'))
        labels_ort, scores_ort, boxes_ort = (np.asarray(ort[k]) for k in ('labels', 'scores', 'bboxes'))
        assert len(boxes_pt) == len(boxes_ort) > 0
        size = max(image_pt['ori_shape'])
        pairs = pair_detections(labels_pt, scores_pt, boxes_pt, labels_ort, scores_ort, boxes_ort, box_scale=size)
        assert (pairs >= 0).all(), f'no onnxruntime detection of labels {labels_pt[pairs < 0]}'
        np.testing.assert_allclose(scores_ort[pairs], scores_pt, atol=1e-4)
        np.testing.assert_allclose(boxes_ort[pairs], boxes_pt, atol=1e-3 * size)
        for i, j in enumerate(pairs) if 'masks' in pt else ():
            mask_pt, mask_ort = coco_mask.decode(pt['masks'][i]), coco_mask.decode(ort['masks'][j])
            assert (mask_pt != mask_ort).mean() <= 1e-3


@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_exported_model_gives_pytorch_answers_in_tools_test(name, data, tmp_path):
    config, task = CONFIGS[name], TASKS[name]
    ckpt = decisive_checkpoint(name, tmp_path / 'model.pth')
    onnx = tmp_path / 'model.onnx'
    proc = run_tool('deployment/export_onnx.py',
                    '--config', str(ROOT / config), '--checkpoint', str(ckpt), '--out', str(onnx),
                    '--check-sizes', '64', '96', '96', '128')
    assert f'the whole {task} model' in proc.stdout and onnx.with_suffix('.onnx.json').is_file()
    assert float(proc.stdout.split('max difference ')[-1].split()[0]) <= 1e-4

    pytorch = run_test(name, ckpt, data[task], tmp_path / 'pytorch.pkl')
    onnxruntime = run_test(name, onnx, data[task], tmp_path / 'onnxruntime.pkl')
    scale = 100 if task != 'detection' else 1  # mmseg and mmpretrain report percentages
    assert abs(pytorch['metric'] - onnxruntime['metric']) <= 0.005 * scale
    expected, got = pytorch['predictions'], onnxruntime['predictions']
    assert len(expected) == len(got) > 0
    if task == 'detection':
        compare_detections(expected, got)
    elif task == 'segmentation':
        maps_pt = np.stack([np.asarray(p['pred_sem_seg']['data']) for p in expected])
        maps_ort = np.stack([np.asarray(p['pred_sem_seg']['data']) for p in got])
        assert maps_pt.shape == maps_ort.shape and (maps_pt == maps_ort).mean() >= 0.999
        assert len(np.unique(maps_pt)) > 1  # a real map, not one class everywhere
    else:
        scores_pt = np.stack([np.asarray(p['pred_score']) for p in expected])
        scores_ort = np.stack([np.asarray(p['pred_score']) for p in got])
        np.testing.assert_allclose(scores_pt, scores_ort, atol=1e-5)
        assert [int(p['pred_label'][0]) for p in expected] == [int(p['pred_label'][0]) for p in got]

    # The runner's other door: the inferencer with the exported model draws the predictions.
    image = sorted(Path(data[task]).rglob('*.png' if task != 'segmentation' else '*.jpg'))[0]
    demo = run_tool('demo.py', str(image), str(ROOT / config), str(onnx), '--out-dir', str(tmp_path / 'demo'))
    assert list((tmp_path / 'demo' / 'vis').glob('*')), demo.stdout


@pytest.mark.parametrize('config, options, message', [
    (CONFIGS['retinanet'], ['model.test_cfg.nms.type=soft_nms'], "test_cfg nms.type='soft_nms': only plain 'nms'"),
    (CONFIGS['semantic_fpn'], ['model.test_cfg.mode=slide'], "test_cfg.mode='slide': only whole-image inference"),
    # A detector whose post-processing differs (FCOS's centerness): refused by its class, naming the valid ones.
    (CONFIGS['retinanet'], ['model.type=FCOS'], 'FCOS cannot be exported whole: supported models are ImageClassifier'),
], ids=['soft-nms', 'sliding-window', 'another-detector'])
def test_unsupported_settings_are_refused_naming_them(config, options, message, tmp_path):
    onnx = tmp_path / 'model.onnx'
    proc = run_tool('deployment/export_onnx.py',
                    '--config', str(ROOT / config), '--out', str(onnx), '--cfg-options', *options,
                    check=False)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 1 and last.startswith('error: ') and message in last, proc.stderr[-2000:]
    assert 'Traceback' not in proc.stderr and not list(tmp_path.iterdir())  # nothing written


def test_a_checkpoint_of_another_model_is_refused_whole(tmp_path):
    onnx = tmp_path / 'model.onnx'
    other = random_checkpoint(CONFIGS['classifier'], tmp_path / 'classifier.pth')
    proc = run_tool('deployment/export_onnx.py',
                    '--config', str(ROOT / CONFIGS['retinanet']), '--checkpoint', str(other),
                    '--out', str(onnx), check=False)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 1 and 'classifier.pth does not fit the model of' in last and 'keys missing' in last
    assert sorted(p.name for p in tmp_path.iterdir()) == ['classifier.pth']


@pytest.mark.parametrize('sidecar, message', [
    (None, 'model.onnx.json is missing: tools/deployment/export_onnx.py writes it beside'),
    ('{"format": "an-older-one"}', "format 'an-older-one', expected"),
    ('not json', 'model.onnx.json is not JSON'),
], ids=['missing', 'other-format', 'garbled'])
def test_a_model_without_its_sidecar_is_a_clear_error(sidecar, message, toy_cls, tmp_path):
    onnx = tmp_path / 'model.onnx'
    onnx.write_bytes(b'')  # the sidecar is read first: the file itself is never opened
    if sidecar is not None:
        (tmp_path / 'model.onnx.json').write_text(sidecar)
    proc = run_tool('test.py', str(ROOT / CONFIGS['classifier']), str(onnx), '--work-dir', str(tmp_path / 'work'),
                    '--cfg-options', f'test_dataloader.dataset.data_root={toy_cls}/', check=False)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 1 and last.startswith('error: ') and message in last, proc.stderr[-2000:]
    assert 'Traceback' not in proc.stderr


def test_a_deploy_config_with_its_converted_checkpoint_exports_as_it_is(tmp_path):
    """The deployed structure (tools/model_converters/reparameterize_model.py) exports and passes the check."""
    config = ROOT / CONFIGS['retinanet']
    reparameterize(config, str(decisive_checkpoint('retinanet', tmp_path / 'model.pth')), tmp_path / 'deploy.pth')
    proc = run_tool('deployment/export_onnx.py', '--config', str(deploy_config_of(config)), '--checkpoint',
                    str(tmp_path / 'deploy.pth'), '--out', str(tmp_path / 'deploy.onnx'),
                    '--check-sizes', '64', '96', '96', '128')
    assert 'the whole detection model' in proc.stdout
    assert float(proc.stdout.split('max difference ')[-1].split()[0]) <= 1e-4
