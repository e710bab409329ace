# Semantic FPN with a ConvMLP-S backbone (ImageNet-pretrained), as in the paper's official configs.
_base_ = 'mmseg::_base_/models/fpn_r50.py'
custom_imports = dict(imports=['convmlp_mm'], allow_failed_imports=False)

model = dict(
    # The base sets pretrained='open-mmlab://resnet50_v1c', which the segmentor would hand to the
    # backbone; ConvMLP takes its weights through init_cfg instead.
    pretrained=None,
    data_preprocessor=dict(size=(512, 512)),  # pads the 512x512 training crops of smaller images
    backbone=dict(
        _delete_=True,
        type='ConvMLP',
        arch='s',
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(type='Pretrained',
                      checkpoint='https://shi-labs.com/projects/convmlp/checkpoints/convmlp_s_imagenet.pth')),
    neck=dict(in_channels=[64, 128, 256, 512]),
    decode_head=dict(num_classes=150))
