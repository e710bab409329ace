# ConvMLP-S fine-tuned on cifar10 from the official ImageNet weights (paper results: README's model zoo).
_base_ = [
    './_base_/models/convmlp_classifier.py',
    './_base_/datasets/cifar10_224.py',
    './_base_/schedules/finetune_50e.py',
    'mmpretrain::_base_/default_runtime.py',
]
model = dict(
    backbone=dict(
        arch='s',
        init_cfg=dict(type='Pretrained',
                      checkpoint='https://shi-labs.com/projects/convmlp/checkpoints/convmlp_s_imagenet.pth')),
    head=dict(num_classes=10, in_channels=512))
