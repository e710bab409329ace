# Mask R-CNN with a ConvMLP-S backbone (ImageNet-pretrained), as in the paper's official configs.
_base_ = 'mmdet::_base_/models/mask-rcnn_r50_fpn.py'
custom_imports = dict(imports=['convmlp_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='ConvMLP',
        arch='s',
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(type='Pretrained',
                      checkpoint='https://shi-labs.com/projects/convmlp/checkpoints/convmlp_s_imagenet.pth')),
    neck=dict(in_channels=[64, 128, 256, 512], num_outs=5))
