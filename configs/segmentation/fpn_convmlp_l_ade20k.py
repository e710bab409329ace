# Semantic FPN + ConvMLP-L on ADE20K, 512x512 crops, 40k iterations (paper results: README's model zoo).
_base_ = [
    './_base_/models/convmlp_fpn.py',
    './_base_/datasets/ade20k_checked.py',
    './_base_/schedules/adamw_poly_40k.py',
    'mmseg::_base_/default_runtime.py',
]
model = dict(
    backbone=dict(
        arch='l',
        init_cfg=dict(checkpoint='https://shi-labs.com/projects/convmlp/checkpoints/convmlp_l_imagenet.pth')),
    neck=dict(in_channels=[96, 192, 384, 768]))
