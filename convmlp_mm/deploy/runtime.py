"""An exported model run by onnxruntime, as a model that mmengine's Runner, the test loop, the evaluators,
the visualization hooks and the inferencers take in place of the PyTorch one.

``tools/test.py CONFIG model.onnx`` and ``tools/demo.py IMAGE CONFIG model.onnx`` use it: the config still
gives the data pipeline (so images are read and resized exactly as for PyTorch), the evaluator and the
visualizer; the network and its post-processing run in onnxruntime, the pre-processing in numpy from the
JSON written beside the file.
"""
from typing import List, Optional, Sequence

import numpy as np
import torch
from mmengine.model import BaseModel
from mmengine.structures import InstanceData, PixelData

from ..registry import register_model
from .preprocessing import preprocess, read_sidecar


def _scale_factor(meta: dict) -> np.ndarray:
    factor = meta.get('scale_factor', (1.0, 1.0))
    return np.asarray(factor[:2] if len(factor) >= 2 else (factor[0], factor[0]), dtype=np.float32)


def _nearest_resize(seg_map: np.ndarray, size: Sequence[int]) -> np.ndarray:
    rows = np.minimum((np.arange(size[0]) + 0.5) * seg_map.shape[0] / size[0], seg_map.shape[0] - 1).astype(int)
    cols = np.minimum((np.arange(size[1]) + 0.5) * seg_map.shape[1] / size[1], seg_map.shape[1] - 1).astype(int)
    return seg_map[rows[:, None], cols[None, :]]


@register_model
class OnnxRuntimeModel(BaseModel):
    """A model exported by ``tools/deployment/export_onnx.py``, run with onnxruntime.

    Args:
        onnx_file (str): The .onnx file; its ``.onnx.json`` sidecar must lie beside it.
        providers (list[str], optional): onnxruntime execution providers. Defaults to the CPU provider.
        num_threads (int, optional): Threads of the CPU provider; by default onnxruntime's choice.
    """

    def __init__(self, onnx_file: str, providers: Optional[List[str]] = None,
                 num_threads: Optional[int] = None, **_ignored) -> None:
        super().__init__()
        import onnxruntime as ort
        self.meta = read_sidecar(onnx_file)
        options = ort.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = num_threads
        self.session = ort.InferenceSession(str(onnx_file), options,
                                            providers=providers or ['CPUExecutionProvider'])
        self.task = self.meta['task']
        self.dataset_meta = {}
        if self.meta.get('classes'):
            self.dataset_meta['classes'] = tuple(self.meta['classes'])
        if self.meta.get('palette'):  # the visualizers take colours as tuples (JSON has lists)
            self.dataset_meta['palette'] = [tuple(colour) for colour in self.meta['palette']]

    def forward(self, inputs, data_samples=None, mode: str = 'predict'):
        if mode != 'predict':
            raise ValueError(f"an onnxruntime model only predicts; mode={mode!r} is not 'predict'")
        return self.test_step(dict(inputs=inputs, data_samples=data_samples))

    def val_step(self, data):
        return self.test_step(data)

    def test_step(self, data) -> list:
        images = [np.asarray(image) for image in data['inputs']]
        samples = data['data_samples']
        batch, sizes = preprocess(images, self.meta['preprocessing'])
        feeds = {'image': batch}
        if self.task == 'detection':
            feeds['img_shape'] = np.asarray([s.metainfo.get('img_shape', size)[:2]
                                             for s, size in zip(samples, sizes)], dtype=np.float32)
            feeds['scale_factor'] = np.stack([_scale_factor(s.metainfo) for s in samples])
        outputs = dict(zip(self.meta['output_names'], self.session.run(self.meta['output_names'], feeds)))
        return getattr(self, f'_{self.task}_results')(outputs, samples, sizes)

    def _detection_results(self, outputs: dict, samples: list, sizes) -> list:
        for index, sample in enumerate(samples):
            mine = outputs['batch_index'] == index
            results = InstanceData(bboxes=torch.from_numpy(outputs['boxes'][mine]),
                                   scores=torch.from_numpy(outputs['scores'][mine]),
                                   labels=torch.from_numpy(outputs['labels'][mine]))
            if 'masks' in outputs:
                results.masks = self._paste_masks(torch.from_numpy(outputs['masks'][mine]), results.bboxes,
                                                  sample.metainfo['ori_shape'][:2])
            sample.pred_instances = results
        return samples

    def _paste_masks(self, masks: torch.Tensor, boxes: torch.Tensor, shape) -> torch.Tensor:
        """Each (28, 28) mask probability map into the original image at its box, thresholded: what mmdet's
        FCNMaskHead does on CPUs (one box at a time, only the box's region of the image)."""
        from mmdet.models.roi_heads.mask_heads.fcn_mask_head import _do_paste_mask
        height, width = shape
        pasted = torch.zeros(len(masks), height, width, dtype=torch.bool)
        for i in range(len(masks)):
            chunk, region = _do_paste_mask(masks[i:i + 1, None], boxes[i:i + 1], height, width, skip_empty=True)
            pasted[(slice(i, i + 1),) + region] = chunk >= self.meta['mask_thr_binary']
        return pasted

    @staticmethod
    def _segmentation_results(outputs: dict, samples: list, sizes) -> list:
        for seg_map, sample, (height, width) in zip(outputs['seg_map'], samples, sizes):
            seg_map = seg_map[:height, :width]  # the padding is not image
            ori_shape = sample.metainfo.get('ori_shape', (height, width))[:2]
            if tuple(ori_shape) != (height, width):
                seg_map = _nearest_resize(seg_map, ori_shape)
            sample.pred_sem_seg = PixelData(data=torch.from_numpy(np.ascontiguousarray(seg_map))[None])
        return samples

    @staticmethod
    def _classification_results(outputs: dict, samples: list, sizes) -> list:
        for scores, sample in zip(outputs['scores'], samples):
            scores = torch.from_numpy(scores)
            sample.set_pred_score(scores).set_pred_label(scores.argmax().unsqueeze(0))
        return samples
