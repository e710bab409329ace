# Semantic FPN + ConvMLP-L on ADE20K: the ConvMLP-S config with the L backbone.
_base_ = './fpn_convmlp_s_ade20k.py'
model = dict(
    backbone=dict(
        arch='l',
        init_cfg=dict(checkpoint='https://shi-labs.com/projects/convmlp/checkpoints/convmlp_l_imagenet.pth')),
    neck=dict(in_channels=[96, 192, 384, 768]))
