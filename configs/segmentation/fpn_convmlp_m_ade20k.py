# Semantic FPN + ConvMLP-M on ADE20K: the ConvMLP-S config with the M backbone.
_base_ = './fpn_convmlp_s_ade20k.py'
model = dict(
    backbone=dict(
        arch='m',
        init_cfg=dict(checkpoint='https://shi-labs.com/projects/convmlp/checkpoints/convmlp_m_imagenet.pth')),
    neck=dict(in_channels=[64, 128, 256, 512]))
