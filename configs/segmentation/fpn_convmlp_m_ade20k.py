# Semantic FPN + ConvMLP-M on ADE20K, 512x512 crops, 40k iterations (paper results: README's model zoo).
_base_ = [
    './_base_/models/convmlp_fpn.py',
    './_base_/datasets/ade20k_checked.py',
    './_base_/schedules/adamw_poly_40k.py',
    'mmseg::_base_/default_runtime.py',
]
model = dict(
    backbone=dict(
        arch='m',
        init_cfg=dict(checkpoint='https://shi-labs.com/projects/convmlp/checkpoints/convmlp_m_imagenet.pth')),
    neck=dict(in_channels=[64, 128, 256, 512]))
