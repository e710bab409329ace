# Mask R-CNN + ConvMLP-L on COCO, 1x schedule: the ConvMLP-S config with the L backbone.
_base_ = './mask_rcnn_convmlp_s_fpn.py'
model = dict(
    backbone=dict(
        arch='l',
        init_cfg=dict(checkpoint='https://shi-labs.com/projects/convmlp/checkpoints/convmlp_l_imagenet.pth')),
    neck=dict(in_channels=[96, 192, 384, 768]))
