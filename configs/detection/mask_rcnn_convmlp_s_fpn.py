# Mask R-CNN + ConvMLP-S on COCO, 1x schedule (paper results: docs/model_zoo.md).
_base_ = [
    './_base_/models/convmlp_mask_rcnn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    './_base_/schedules/adamw_1x.py',
    './_base_/default_runtime.py',
]
model = dict(
    backbone=dict(
        arch='s',
        init_cfg=dict(checkpoint='https://shi-labs.com/projects/convmlp/checkpoints/convmlp_s_imagenet.pth')),
    neck=dict(in_channels=[64, 128, 256, 512]))
