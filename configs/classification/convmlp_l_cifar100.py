# ConvMLP-L fine-tuned on cifar100 from the official ImageNet weights (paper results: README's model zoo).
_base_ = [
    './_base_/models/convmlp_classifier.py',
    './_base_/datasets/cifar100_224.py',
    './_base_/schedules/finetune_50e.py',
    'mmpretrain::_base_/default_runtime.py',
]
model = dict(
    backbone=dict(
        arch='l',
        init_cfg=dict(type='Pretrained',
                      checkpoint='https://shi-labs.com/projects/convmlp/checkpoints/convmlp_l_imagenet.pth')),
    head=dict(num_classes=100, in_channels=768))
