"""Whole OpenMMLab models as traceable graphs: the network and its post-processing, for ONNX export.

Each graph takes the pre-processed batch (mean/std applied, RGB order, padded: see
:func:`convmlp_mm.deploy.preprocessing.preprocess`) and returns what the library's ``predict`` returns,
computed the same way, with no Python-side loops over images:

- classifier: ``scores`` (B, num_classes), the softmax of the logits;
- segmentor (``EncoderDecoder``, whole-image inference): ``seg_map`` (B, H, W) int64, the arg-max of the
  logits resized (bilinear) to the input size;
- dense detector (RetinaNet and others of mmdet's ``AnchorHead`` family with ``DeltaXYWHBBoxCoder``):
  ``boxes`` (N, 4) in original-image pixels, ``scores`` (N,), ``labels`` (N,) and ``batch_index`` (N,),
  the detections of all images of the batch, each image's sorted by score.

- two-stage detector (Faster/Mask R-CNN: RPN + ``StandardRoIHead``): the same four outputs, and for Mask
  R-CNN ``masks`` (N, 28, 28), each detection's mask probabilities, which the runner pastes into the image.

The dense detector does what mmdet's ``BaseDenseHead.predict_by_feat`` does per image, for the whole batch at
once: per level the ``nms_pre`` best (anchor, class) pairs above ``score_thr``, delta decoding, clipping
to each image's own size (an input: padding is not image), rescaling to the original image (an input),
the ``min_bbox_size`` filter, class-wise NMS (torchvision's ``nms`` with mmcv's class-offset trick, which
the exporter writes as ONNX ``NonMaxSuppression``) and the ``max_per_img`` best per image. The two-stage
graph does the same for the RPN's proposals (NMS per image and level) and the RoI head's detections, pools
RoIs with torchvision's ``roi_align`` (ONNX ``RoiAlign``) and runs the mask head on the detections.
"""
import functools
import math
from typing import List, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..errors import UserError


class UnsupportedModelError(UserError, ValueError):
    """The model (or its test settings) is not one that :func:`build_graph` can export whole."""


def _limits(img_shape: Tensor) -> Tensor:
    """(B, 4) clip limits (w, h, w, h) from (B, 2) image sizes (h, w)."""
    return img_shape.flip(-1).repeat(1, 2)


def _decode(coder, priors: Tensor, deltas: Tensor, limits: Tensor, wh_ratio_clip: float = 16 / 1000) -> Tensor:
    """mmdet's ``delta2bbox`` (DeltaXYWHBBoxCoder.decode), step by step in its order, for priors and deltas of
    any leading shape, clipped to ``limits`` (see :func:`_limits`, broadcast): each image to its own size,
    not to the padded batch. (mmdet's own returns early on zero boxes, which torch.export cannot trace
    after an NMS.)"""
    denorm = deltas * deltas.new_tensor(coder.stds) + deltas.new_tensor(coder.means)
    pxy = (priors[..., :2] + priors[..., 2:]) * 0.5
    pwh = priors[..., 2:] - priors[..., :2]
    dxy_wh = pwh * denorm[..., :2]
    max_ratio = abs(math.log(wh_ratio_clip))
    if coder.add_ctr_clamp:
        dxy_wh = torch.clamp(dxy_wh, max=coder.ctr_clamp, min=-coder.ctr_clamp)
        dwh = torch.clamp(denorm[..., 2:], max=max_ratio)
    else:
        dwh = denorm[..., 2:].clamp(min=-max_ratio, max=max_ratio)
    gxy = pxy + dxy_wh
    gwh = pwh * dwh.exp()
    boxes = torch.cat([gxy - (gwh * 0.5), gxy + (gwh * 0.5)], dim=-1)
    if coder.clip_border:
        boxes = torch.minimum(boxes.clamp(min=0), limits)
    return boxes


def _check_coder(head: nn.Module) -> None:
    coder = type(getattr(head, 'bbox_coder', None)).__name__
    if coder != 'DeltaXYWHBBoxCoder':
        raise UnsupportedModelError(f'{type(head).__name__} with {coder}: only DeltaXYWHBBoxCoder heads are exported')


def _check_nms(cfg) -> None:
    nms = cfg.get('nms') or {}
    if nms.get('type', 'nms') != 'nms':
        raise UnsupportedModelError(f"test_cfg nms.type={nms.get('type')!r}: only plain 'nms' is exported")


def _topk(scores: Tensor, nms_pre: int) -> Tuple[Tensor, Tensor]:
    """The ``nms_pre`` best of each row (all of them when ``nms_pre`` <= 0), sorted."""
    k = scores.shape[1] if nms_pre <= 0 else torch.sym_min(nms_pre, scores.shape[1])
    return scores.topk(k, dim=1)


def _grouped_nms(boxes: Tensor, scores: Tensor, group: Tensor, image_index: Tensor, iou_threshold: float,
                 max_per_image: int, batch: int) -> Tensor:
    """Indices of what NMS keeps within each group (never across groups), the ``max_per_image`` best of
    each image, sorted by score. mmcv's ``batched_nms``: groups are moved apart by an offset larger than
    any box; here a group is (image, class) or (image, level) instead of a class alone."""
    from torchvision.ops import nms
    offset = torch.cat([boxes.reshape(-1), boxes.new_zeros(1)]).max() + 1  # also when no box is left
    kept = _bounded(nms(boxes + (group * offset).unsqueeze(1).to(boxes.dtype), scores, iou_threshold))
    # ``kept`` is sorted by score, so each image's detections are too; their rank picks max_per_image.
    one_hot = (image_index[kept].unsqueeze(1) == torch.arange(batch, device=boxes.device).unsqueeze(0)).long()
    rank = (one_hot.cumsum(0) * one_hot).sum(1) - 1
    return _bounded(kept[rank < max_per_image])


def _bounded(index: Tensor) -> Tensor:
    """``index`` (a data-dependent number of rows) with that number bounded for torch.export: unbounded, the
    size checks it derives (rows x classes) exceed int64 and cannot be written to ONNX."""
    torch._check(index.shape[0] <= 2 ** 31 - 1)
    return index


def _size_filter(boxes: Tensor, min_bbox_size: float) -> Tensor:
    if min_bbox_size < 0:
        return torch.ones_like(boxes[:, 0], dtype=torch.bool)
    return ((boxes[:, 2] - boxes[:, 0]) > min_bbox_size) & ((boxes[:, 3] - boxes[:, 1]) > min_bbox_size)


def _image_index(batch: int, per_image: int, device) -> Tensor:
    return torch.arange(batch, device=device).unsqueeze(1).expand(-1, per_image).reshape(-1)


class ClassifierGraph(nn.Module):
    """mmpretrain ``ImageClassifier``: image batch in, class probabilities out."""

    input_names = ('image',)
    output_names = ('scores',)

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: Tensor) -> Tensor:
        logits = self.model(image, mode='tensor')
        return F.softmax(logits, dim=1)


def _upsample_by_scale(module: nn.Module, x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=module.scale_factor, mode=module.mode, align_corners=module.align_corners)


class SegmentorGraph(nn.Module):
    """mmseg ``EncoderDecoder`` (``test_cfg.mode='whole'``): image batch in, class map at the input size out."""

    input_names = ('image',)
    output_names = ('seg_map',)

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        mode = (model.test_cfg or {}).get('mode', 'whole')
        if mode != 'whole':
            raise UnsupportedModelError(f"test_cfg.mode={mode!r}: only whole-image inference (mode='whole') is "
                                        f"exported; sliding windows need a loop over crops outside the graph")
        if model.decode_head.out_channels == 1:
            raise UnsupportedModelError('decode_head.out_channels=1 (a thresholded binary map) is not exported; '
                                        'only multi-class heads (arg-max over classes)')
        # mmseg's Upsample computes its output size as int(size * scale_factor), a Python int that torch.export
        # fixes to the example's size: at any other size the map would be resized wrongly (and silently).
        # Interpolating by the factor gives the same size and values, and stays dynamic.
        from mmseg.models.utils import Upsample
        for module in model.modules():
            if isinstance(module, Upsample) and not module.size and module.scale_factor:
                module.forward = functools.partial(_upsample_by_scale, module)
        self.model = model
        self.align_corners = model.decode_head.align_corners

    def forward(self, image: Tensor) -> Tensor:
        logits = self.model(image, mode='tensor')
        logits = F.interpolate(logits, size=image.shape[2:], mode='bilinear', align_corners=self.align_corners)
        return logits.argmax(dim=1)


class DenseDetectorGraph(nn.Module):
    """mmdet single-stage detector with an anchor head: boxes, scores, labels, batch index out."""

    input_names = ('image', 'img_shape', 'scale_factor')
    output_names = ('boxes', 'scores', 'labels', 'batch_index')

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        head = model.bbox_head
        _check_coder(head)
        if not hasattr(head, 'prior_generator'):
            raise UnsupportedModelError(
                f'{type(head).__name__}: only anchor heads (RetinaNet and its kind) are exported')
        cfg = head.test_cfg
        _check_nms(cfg)
        self.model = model
        self.num_classes = head.cls_out_channels
        self.use_sigmoid = head.use_sigmoid_cls
        self.nms_pre = int(cfg.get('nms_pre', -1))
        self.score_thr = float(cfg.get('score_thr', 0))
        self.min_bbox_size = float(cfg.get('min_bbox_size', -1))
        self.iou_threshold = float(cfg.nms['iou_threshold'])
        self.max_per_img = int(cfg.get('max_per_img', 100))

    def _level_candidates(self, cls_score: Tensor, bbox_pred: Tensor,
                          priors: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """The level's best (anchor, class) pairs per image: scores, labels, priors and deltas, (B, k, ...)."""
        batch = cls_score.shape[0]
        logits = cls_score.permute(0, 2, 3, 1).reshape(batch, -1, self.num_classes)
        scores = logits.sigmoid() if self.use_sigmoid else logits.softmax(-1)[..., :-1]
        # index = anchor * num_classes + class, as mmdet flattens; above score_thr is applied after NMS,
        # which keeps the same detections (a box below it can only suppress boxes below it).
        scores, index = _topk(scores.reshape(batch, -1), self.nms_pre)
        anchor = torch.div(index, self.num_classes, rounding_mode='floor')
        labels = index - anchor * self.num_classes
        deltas = bbox_pred.permute(0, 2, 3, 1).reshape(batch, -1, 4)
        deltas = deltas.gather(1, anchor.unsqueeze(-1).expand(-1, -1, 4))
        return scores, labels, priors[anchor], deltas

    def forward(self, image: Tensor, img_shape: Tensor, scale_factor: Tensor) -> Tuple[Tensor, ...]:
        head = self.model.bbox_head
        cls_scores, bbox_preds = self.model(image, mode='tensor')
        batch = image.shape[0]
        priors = head.prior_generator.grid_priors([c.shape[-2:] for c in cls_scores], dtype=image.dtype,
                                                  device=image.device)
        parts = [self._level_candidates(c, b, p) for c, b, p in zip(cls_scores, bbox_preds, priors)]
        scores, labels, anchors, deltas = (torch.cat(p, dim=1) for p in zip(*parts))
        boxes = _decode(head.bbox_coder, anchors, deltas, _limits(img_shape).unsqueeze(1))
        boxes = boxes * (1 / scale_factor).repeat(1, 2).unsqueeze(1)  # mmdet rescales before its NMS
        image_index = _image_index(batch, scores.shape[1], image.device)
        boxes, scores, labels = boxes.reshape(-1, 4), scores.reshape(-1), labels.reshape(-1)
        keep = _bounded(((scores > self.score_thr) & _size_filter(boxes, self.min_bbox_size)).nonzero()[:, 0])
        boxes, scores, labels, image_index = boxes[keep], scores[keep], labels[keep], image_index[keep]
        kept = _grouped_nms(boxes, scores, image_index * self.num_classes + labels, image_index,
                            self.iou_threshold, self.max_per_img, batch)
        return boxes[kept], scores[kept], labels[kept], image_index[kept]


class TwoStageDetectorGraph(nn.Module):
    """mmdet Mask R-CNN / Faster R-CNN (RPN + StandardRoIHead): boxes, scores, labels, batch index and, with
    a mask head, each detection's ``masks`` (N, 28, 28): the sigmoid of its class's mask logits, which
    the runner pastes into the image as mmdet does (its ``_do_paste_mask``, then ``mask_thr_binary``)."""

    input_names = ('image', 'img_shape', 'scale_factor')

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        roi_head = model.roi_head
        if type(roi_head).__name__ != 'StandardRoIHead' or not hasattr(model, 'rpn_head'):
            raise UnsupportedModelError(f'{type(roi_head).__name__}: only RPN + StandardRoIHead models '
                                        f'(Faster/Mask R-CNN) are exported')
        _check_coder(model.rpn_head)
        _check_coder(roi_head.bbox_head)
        rpn_cfg, rcnn_cfg = model.rpn_head.test_cfg, roi_head.test_cfg
        _check_nms(rpn_cfg)
        _check_nms(rcnn_cfg)
        if roi_head.with_mask and roi_head.share_roi_extractor:
            raise UnsupportedModelError('a mask head sharing the box RoI extractor is not exported')
        if roi_head.bbox_head.reg_class_agnostic or (roi_head.with_mask and roi_head.mask_head.class_agnostic):
            raise UnsupportedModelError('class-agnostic box or mask heads are not exported')
        self.model = model
        self.rpn = dict(nms_pre=int(rpn_cfg.get('nms_pre', -1)), iou=float(rpn_cfg.nms['iou_threshold']),
                        max_per_img=int(rpn_cfg.get('max_per_img', 1000)),
                        min_bbox_size=float(rpn_cfg.get('min_bbox_size', -1)))
        self.rcnn = dict(score_thr=float(rcnn_cfg.get('score_thr', 0)), iou=float(rcnn_cfg.nms['iou_threshold']),
                         max_per_img=int(rcnn_cfg.get('max_per_img', 100)))
        self.num_classes = roi_head.bbox_head.num_classes
        self.output_names = ('boxes', 'scores', 'labels', 'batch_index') + (('masks',) if roi_head.with_mask else ())

    def _proposals(self, feats, img_shape: Tensor) -> Tensor:
        """mmdet's RPNHead.predict_by_feat for the batch: rois (K, 5) with the image index first."""
        head = self.model.rpn_head
        cls_scores, bbox_preds = head(feats)
        batch = cls_scores[0].shape[0]
        priors = head.prior_generator.grid_priors([c.shape[-2:] for c in cls_scores], dtype=feats[0].dtype,
                                                  device=feats[0].device)
        parts = []
        for level, (cls_score, bbox_pred, prior) in enumerate(zip(cls_scores, bbox_preds, priors)):
            logits = cls_score.permute(0, 2, 3, 1).reshape(batch, -1, head.cls_out_channels)
            scores = logits.sigmoid()[..., 0] if head.use_sigmoid_cls else logits.softmax(-1)[..., 0]
            scores, index = _topk(scores, self.rpn['nms_pre'])
            deltas = bbox_pred.permute(0, 2, 3, 1).reshape(batch, -1, 4)
            deltas = deltas.gather(1, index.unsqueeze(-1).expand(-1, -1, 4))
            parts.append((scores, prior[index], deltas, torch.full_like(index, level)))
        scores, anchors, deltas, levels = (torch.cat(p, dim=1) for p in zip(*parts))
        boxes = _decode(head.bbox_coder, anchors, deltas, _limits(img_shape).unsqueeze(1)).reshape(-1, 4)
        image_index = _image_index(batch, scores.shape[1], boxes.device)
        scores, levels = scores.reshape(-1), levels.reshape(-1)
        keep = _bounded(_size_filter(boxes, self.rpn['min_bbox_size']).nonzero()[:, 0])
        boxes, scores, levels, image_index = boxes[keep], scores[keep], levels[keep], image_index[keep]
        kept = _grouped_nms(boxes, scores, image_index * len(parts) + levels, image_index, self.rpn['iou'],
                            self.rpn['max_per_img'], batch)
        return torch.cat([image_index[kept].unsqueeze(1).to(boxes.dtype), boxes[kept]], dim=1)

    @staticmethod
    def _roi_features(extractor: nn.Module, feats, rois: Tensor) -> Tensor:
        """mmdet's SingleRoIExtractor with torchvision's roi_align (exported as ONNX RoiAlign): every RoI
        is pooled from each level and the level its size maps to is kept, instead of mmdet's data-dependent
        per-level gather."""
        from torchvision.ops import roi_align
        levels = extractor.map_roi_levels(rois, len(extractor.featmap_strides))
        pooled = None
        for level, (layer, feat) in enumerate(zip(extractor.roi_layers, feats[:len(extractor.featmap_strides)])):
            if layer.pool_mode != 'avg':
                raise UnsupportedModelError(f'RoIAlign pool_mode={layer.pool_mode!r}: only avg is exported')
            out = roi_align(feat, rois, layer.output_size, layer.spatial_scale, layer.sampling_ratio, layer.aligned)
            chosen = (levels == level).to(out.dtype).view(-1, 1, 1, 1)
            pooled = out * chosen if pooled is None else pooled + out * chosen
        return pooled

    def forward(self, image: Tensor, img_shape: Tensor, scale_factor: Tensor) -> Tuple[Tensor, ...]:
        roi_head = self.model.roi_head
        batch = image.shape[0]
        feats = self.model.extract_feat(image)
        rois = self._proposals(feats, img_shape)
        roi_image = rois[:, 0].long()
        cls_score, bbox_pred = roi_head.bbox_head(self._roi_features(roi_head.bbox_roi_extractor, feats, rois))
        # mmdet's bbox head predict_by_feat + multiclass_nms, for all images at once.
        scores = F.softmax(cls_score, dim=-1)[:, :-1]  # the last column is the background
        num_classes = scores.shape[1]
        boxes = _decode(roi_head.bbox_head.bbox_coder, rois[:, 1:].unsqueeze(1).expand(-1, num_classes, -1),
                        bbox_pred.reshape(-1, num_classes, 4), _limits(img_shape)[roi_image].unsqueeze(1))
        if not roi_head.with_mask:  # mmdet rescales before NMS, except when masks follow
            boxes = boxes * (1 / scale_factor).repeat(1, 2)[roi_image].unsqueeze(1)
        labels = torch.arange(num_classes, device=image.device).expand(boxes.shape[0], -1).reshape(-1)
        image_index = roi_image.unsqueeze(1).expand(-1, num_classes).reshape(-1)
        boxes, scores = boxes.reshape(-1, 4), scores.reshape(-1)
        keep = _bounded((scores > self.rcnn['score_thr']).nonzero()[:, 0])
        boxes, scores, labels, image_index = boxes[keep], scores[keep], labels[keep], image_index[keep]
        kept = _grouped_nms(boxes, scores, image_index * num_classes + labels, image_index, self.rcnn['iou'],
                            self.rcnn['max_per_img'], batch)
        boxes, scores, labels, image_index = boxes[kept], scores[kept], labels[kept], image_index[kept]
        if not roi_head.with_mask:
            return boxes, scores, labels, image_index
        mask_rois = torch.cat([image_index.unsqueeze(1).to(boxes.dtype), boxes], dim=1)
        mask_preds = roi_head.mask_head(self._roi_features(roi_head.mask_roi_extractor, feats, mask_rois))
        index = labels.view(-1, 1, 1, 1).expand(-1, 1, *mask_preds.shape[2:])
        masks = mask_preds.gather(1, index)[:, 0].sigmoid()
        return boxes / scale_factor.repeat(1, 2)[image_index], scores, labels, image_index, masks


#: Which graph exports which of the libraries' models (by class name), and the task it serves.
GRAPHS: List[Tuple[str, type, Tuple[str, ...]]] = [
    ('classification', ClassifierGraph, ('ImageClassifier',)),
    ('segmentation', SegmentorGraph, ('EncoderDecoder',)),
    ('detection', DenseDetectorGraph, ('RetinaNet', 'SingleStageDetector')),
    ('detection', TwoStageDetectorGraph, ('MaskRCNN', 'FasterRCNN', 'TwoStageDetector')),
]


def supported_models() -> List[str]:
    return [name for _, _, names in GRAPHS for name in names]


def build_graph(model: nn.Module) -> Tuple[str, nn.Module]:
    """The task name and the export graph of an OpenMMLab ``model`` (eval mode, weights loaded)."""
    name = type(model).__name__
    for task, graph, names in GRAPHS:
        if name in names:
            return task, graph(model).eval()
    raise UnsupportedModelError(f'{name} cannot be exported whole: supported models are '
                                f'{", ".join(supported_models())}')
