"""mmdeploy (upstream 1.3.1), the OpenMMLab deployment tool, on ConvMLP models: its Python API (what its
tools/deploy.py calls: ``torch2onnx``, then the task processor's backend model) exports the toy RetinaNet, Mask R-CNN
and Semantic FPN to ONNX Runtime and gives the PyTorch model's outputs, and its test runner (what its tools/test.py
runs) gives our tools/test.py's metric on the toy val sets. Deploy configs are written here, as
mmdeploy's configs/<codebase>/*_onnxruntime_dynamic.py compose them: its wheel carries no configs.

mmdeploy is installed on the `legacy` stack (torch 2.1, as its users run it; requirements/legacy.txt) and on the pinned
one (torch 2.14; requirements/pinned-nodeps.txt), where it needs what docs/deployment.md says: `torch.onnx.export`
called with dynamo=False (the test does it as a user would), and Mask R-CNN's export stops on a torch function
newer torch removed. Where it is not installed (onedl, newest) the test says so and skips."""
import functools
import pickle
from copy import deepcopy
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.onnx.symbolic_opset9
from mmengine.config import Config

from convmlp_mm.compat import torchscript_onnx_export_kwargs
from convmlp_mm.deploy import pair_detections
from convmlp_mm.utils.cli import results_dumper

from ..conftest import ROOT, run_tool
from .test_onnx_models import CONFIGS, METRICS, decisive_checkpoint, run_test  # our ONNX route's toy models

pytestmark = [pytest.mark.e2e, pytest.mark.matrix]

#: The ONNX outputs of each model, as mmdeploy's detection, instance-seg and segmentation configs name them.
OUTPUTS = {'mask_rcnn': ['dets', 'labels', 'masks'], 'retinanet': ['dets', 'labels'], 'semantic_fpn': ['output']}
IMAGE_AXES = {0: 'batch', 2: 'height', 3: 'width'}


def deploy_config(name: str) -> Config:
    """mmdeploy's <codebase>/*_onnxruntime_dynamic.py, composed."""
    segmentation = name == 'semantic_fpn'
    axes = {'input': IMAGE_AXES, **{output: IMAGE_AXES if segmentation else {0: 'batch', 1: 'num_dets'}
                                    for output in OUTPUTS[name]}}
    onnx = dict(type='onnx', export_params=True, keep_initializers_as_inputs=False, opset_version=11,
                save_file='end2end.onnx', input_names=['input'], output_names=OUTPUTS[name], input_shape=None,
                optimize=True, dynamic_axes=axes)
    if segmentation:
        codebase = dict(type='mmseg', task='Segmentation', with_argmax=True)
    else:  # export_postprocess_mask: instance-seg's setting; only mask heads read it
        codebase = dict(type='mmdet', task='ObjectDetection', model_type='end2end',
                        post_processing=dict(score_threshold=0.05, confidence_threshold=0.005, iou_threshold=0.5,
                                             max_output_boxes_per_class=200, pre_top_k=5000, keep_top_k=100,
                                             background_label_id=-1, export_postprocess_mask=False))
    return Config(dict(onnx_config=onnx, codebase_config=codebase, backend_config=dict(type='onnxruntime')))


def pytorch_prediction(name: str, config: str, checkpoint: str, image: np.ndarray):
    if name == 'semantic_fpn':
        from mmseg.apis import inference_model, init_model
        return inference_model(init_model(config, checkpoint, device='cpu'), image)
    from mmdet.apis import inference_detector, init_detector
    return inference_detector(init_detector(config, checkpoint, device='cpu'), image)


def toy_model_config(name: str, toy: Path) -> Config:
    """The toy config with its test split at ``toy``."""
    cfg = Config.fromfile(ROOT / CONFIGS[name])
    options = {'test_dataloader.dataset.data_root': f'{toy}/'}
    if name != 'semantic_fpn':
        options['test_evaluator.ann_file'] = str(toy / 'annotations' / 'instances_val.json')
    cfg.merge_from_dict(options)
    return cfg


def mmdeploy_test(processor, backend, work_dir: Path, out: Path) -> dict:
    """mmdeploy's tools/test.py: the backend model through its test runner on the config's test split; the
    predictions dumped to ``out`` as our tools/test.py --out dumps them. Returns (metrics, predictions)."""
    loader = deepcopy(processor.model_cfg.test_dataloader)
    loader['dataset'] = processor.build_dataset(loader['dataset'])
    runner = processor.build_test_runner(backend, str(work_dir), dataloader=processor.build_dataloader(loader))
    runner.test_evaluator.metrics.append(results_dumper(processor.model_cfg, str(out)))
    metrics = runner.test()
    with open(out, 'rb') as f:
        return metrics, pickle.load(f)


@pytest.fixture(scope='module')
def toy_ade_demo_size(tmp_path_factory) -> Path:
    """Two val images of the toy segmentation set at the demo's size, 256x192."""
    out = tmp_path_factory.mktemp('data') / 'toy_ade'
    run_tool('misc/make_toy_data.py', 'seg', str(out), '--num-train', '1', '--num-val', '2', '--size', '256', '192')
    return out


@pytest.mark.parametrize('name', sorted(OUTPUTS))
def test_mmdeploy_exports_to_onnxruntime_with_the_pytorch_outputs_and_metric(name, toy_coco, toy_ade_demo_size,
                                                                            tmp_path, monkeypatch):
    pytest.importorskip('mmdeploy', reason='mmdeploy is installed on the legacy and pinned stacks '
                                           '(requirements/legacy.txt, requirements/pinned-nodeps.txt)')
    from mmdeploy.apis import torch2onnx
    from mmdeploy.apis.utils import build_task_processor
    config = str(ROOT / CONFIGS[name])
    toy = toy_ade_demo_size if name == 'semantic_fpn' else toy_coco
    checkpoint = str(decisive_checkpoint(name, tmp_path / 'model.pth'))
    height, width = 128, 160
    image = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
    deploy = deploy_config(name)
    # torch >= 2.9 exports with torch.export by default; mmdeploy's rewriters target the TorchScript exporter
    monkeypatch.setattr(torch.onnx, 'export', functools.partial(torch.onnx.export, **torchscript_onnx_export_kwargs()))
    if name == 'mask_rcnn' and not hasattr(torch.onnx.symbolic_opset9, '_cast_Long'):
        # mmdeploy 1.3.1's mask head symbolic imports it; torch removed it (present in 2.1, absent in 2.14)
        with pytest.raises(ImportError, match='_cast_Long'):
            torch2onnx(image, str(tmp_path), 'end2end.onnx', deploy, Config.fromfile(config), checkpoint, 'cpu')
        return
    torch2onnx(image, str(tmp_path), 'end2end.onnx', deploy, Config.fromfile(config), checkpoint, 'cpu')
    processor = build_task_processor(toy_model_config(name, toy), deploy, 'cpu')
    backend = processor.build_backend_model([str(tmp_path / 'end2end.onnx')], processor.update_data_preprocessor)
    inputs, _ = processor.create_input(image)
    with torch.no_grad():
        got = backend.test_step(inputs)[0]
    want = pytorch_prediction(name, config, checkpoint, image)

    if name == 'semantic_fpn':
        map_pt, map_ort = want.pred_sem_seg.data.numpy(), got.pred_sem_seg.data.numpy()
        assert map_pt.shape == map_ort.shape == (1, height, width)
        assert (map_pt == map_ort).mean() >= 0.99 and len(np.unique(map_pt)) > 1
    else:
        compare_instances(name, want.pred_instances, got.pred_instances, width)

    # mmdeploy's tools/test.py on the toy val split against ours on the PyTorch checkpoint: the same predictions on
    # every image, so the same metric (random weights score about 0 bbox mAP: the predictions carry the test)
    metric = METRICS[name]
    ours = run_test(name, Path(checkpoint), toy, tmp_path / 'pytorch.pkl')
    metrics, predictions = mmdeploy_test(processor, backend, tmp_path / 'mmdeploy', tmp_path / 'mmdeploy.pkl')
    assert len(predictions) == len(ours['predictions']) > 1
    if name == 'semantic_fpn':
        maps_pt, maps_ort = (np.stack([np.asarray(p['pred_sem_seg']['data']) for p in run])
                             for run in (ours['predictions'], predictions))
        # 96.8% measured on these random weights, whose maps are all boundaries; three quarters of the other
        # pixels lie on a class boundary (mmdeploy's graph upsamples the logits a sub-pixel apart from mmseg)
        assert maps_pt.shape == maps_ort.shape and (maps_pt == maps_ort).mean() >= 0.95
    else:
        assert matching_share(ours['predictions'], predictions) >= 0.98
    assert abs(metrics[metric] - ours['metric']) <= (0.5 if name == 'semantic_fpn' else 0.005)  # mIoU in %


def matching_share(expected: list, got: list) -> float:
    """The share of PyTorch's detections (in the dumps of a whole test split) that mmdeploy's model also gives: same
    label, score within 1e-3, box within 0.5 px, mask pixels (Mask R-CNN) equal but for 1%. Not all of them: on
    random weights, boxes overlap in near-ties, and mmdeploy's export (ONNX NonMaxSuppression per class, its RPN)
    can keep another of them than mmdet's batched NMS does."""
    from pycocotools import mask as coco_mask
    matched = total = 0
    for image_pt, image_ort in zip(expected, got):
        pt, ort = image_pt['pred_instances'], image_ort['pred_instances']
        (labels_pt, scores_pt, boxes_pt), (labels_ort, scores_ort, boxes_ort) = (
            [np.asarray(d[k]) for k in ('labels', 'scores', 'bboxes')] for d in (pt, ort))
        pairs = pair_detections(labels_pt, scores_pt, boxes_pt, labels_ort, scores_ort, boxes_ort,
                                box_scale=max(image_pt['ori_shape']))
        for i, j in enumerate(pairs):
            same = j >= 0 and abs(scores_pt[i] - scores_ort[j]) <= 1e-3 and abs(boxes_pt[i] - boxes_ort[j]).max() <= 0.5
            if same and 'masks' in pt:
                same = (coco_mask.decode(pt['masks'][i]) != coco_mask.decode(ort['masks'][j])).mean() <= 0.01
            matched += bool(same)
        total += len(pairs)
    assert total > 0
    return matched / total


def compare_instances(name: str, pt, ort, width: int) -> None:
    assert len(pt.scores) == len(ort.scores) > 0
    pairs = pair_detections(pt.labels.numpy(), pt.scores.numpy(), pt.bboxes.numpy(), ort.labels.numpy(),
                            ort.scores.numpy(), ort.bboxes.numpy(), box_scale=float(width))
    assert (pairs >= 0).all()
    np.testing.assert_allclose(ort.scores.numpy()[pairs], pt.scores.numpy(), atol=1e-3)
    np.testing.assert_allclose(ort.bboxes.numpy()[pairs], pt.bboxes.numpy(), atol=0.5)
    if name == 'mask_rcnn':
        masks_pt, masks_ort = pt.masks.numpy().astype(bool), ort.masks.numpy().astype(bool)[pairs]
        assert masks_pt.shape == masks_ort.shape and (masks_pt == masks_ort).mean() >= 0.99
