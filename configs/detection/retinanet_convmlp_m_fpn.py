# RetinaNet + ConvMLP-M on COCO, 1x schedule: the ConvMLP-S config with the M backbone.
_base_ = './retinanet_convmlp_s_fpn.py'
model = dict(
    backbone=dict(
        arch='m',
        init_cfg=dict(checkpoint='https://shi-labs.com/projects/convmlp/checkpoints/convmlp_m_imagenet.pth')),
    neck=dict(in_channels=[64, 128, 256, 512]))
