"""mmdeploy (upstream 1.3.1), the OpenMMLab deployment tool, on ConvMLP models: its Python API (what its
tools/deploy.py calls: ``torch2onnx``, then the task processor's backend model) exports the toy RetinaNet, Mask R-CNN
and Semantic FPN to ONNX Runtime and gives the PyTorch model's outputs. Deploy configs are written here, as
mmdeploy's configs/<codebase>/*_onnxruntime_dynamic.py compose them: its wheel carries no configs.

mmdeploy is installed on the `legacy` stack (torch 2.1, as its users run it; requirements/legacy.txt). Where it is
not installed the test says so and skips; docs/deployment.md says what newer torch needs."""
import numpy as np
import pytest
import torch
from mmengine.config import Config

from convmlp_mm.deploy import pair_detections

from ..conftest import ROOT
from .test_onnx_models import CONFIGS, decisive_checkpoint  # the toy models and weights of our own ONNX route

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


@pytest.mark.parametrize('name', sorted(OUTPUTS))
def test_mmdeploy_exports_to_onnxruntime_with_the_pytorch_outputs(name, tmp_path):
    pytest.importorskip('mmdeploy', reason='mmdeploy is installed on the legacy stack (requirements/legacy.txt)')
    from mmdeploy.apis import torch2onnx
    from mmdeploy.apis.utils import build_task_processor
    config = str(ROOT / CONFIGS[name])
    checkpoint = str(decisive_checkpoint(name, tmp_path / 'model.pth'))
    height, width = 128, 160
    image = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
    deploy = deploy_config(name)
    torch2onnx(image, str(tmp_path), 'end2end.onnx', deploy, Config.fromfile(config), checkpoint, 'cpu')
    processor = build_task_processor(Config.fromfile(config), deploy, 'cpu')
    backend = processor.build_backend_model([str(tmp_path / 'end2end.onnx')])
    inputs, _ = processor.create_input(image)
    with torch.no_grad():
        got = backend.test_step(inputs)[0]
    want = pytorch_prediction(name, config, checkpoint, image)

    if name == 'semantic_fpn':
        map_pt, map_ort = want.pred_sem_seg.data.numpy(), got.pred_sem_seg.data.numpy()
        assert map_pt.shape == map_ort.shape == (1, height, width)
        assert (map_pt == map_ort).mean() >= 0.99 and len(np.unique(map_pt)) > 1
        return
    pt, ort = want.pred_instances, got.pred_instances
    assert len(pt.scores) == len(ort.scores) > 0
    pairs = pair_detections(pt.labels.numpy(), pt.scores.numpy(), pt.bboxes.numpy(), ort.labels.numpy(),
                            ort.scores.numpy(), ort.bboxes.numpy(), box_scale=float(width))
    assert (pairs >= 0).all()
    np.testing.assert_allclose(ort.scores.numpy()[pairs], pt.scores.numpy(), atol=1e-3)
    np.testing.assert_allclose(ort.bboxes.numpy()[pairs], pt.bboxes.numpy(), atol=0.5)
    if name == 'mask_rcnn':
        masks_pt, masks_ort = pt.masks.numpy().astype(bool), ort.masks.numpy().astype(bool)[pairs]
        assert masks_pt.shape == masks_ort.shape and (masks_pt == masks_ort).mean() >= 0.99
