# Semantic FPN + ConvMLP-S on ADE20K, 512x512 crops, 40k iterations (paper results: docs/model_zoo.md).
_base_ = [
    './_base_/models/convmlp_fpn.py',
    './_base_/datasets/ade20k_checked.py',
    './_base_/schedules/adamw_poly_40k.py',
    'mmseg::_base_/default_runtime.py',
]
model = dict(
    backbone=dict(
        arch='s',
        init_cfg=dict(checkpoint='https://shi-labs.com/projects/convmlp/checkpoints/convmlp_s_imagenet.pth')),
    neck=dict(in_channels=[64, 128, 256, 512]))
