# ConvMLP-M fine-tuned on flowers102 from the official ImageNet weights (paper results: README's model zoo).
_base_ = [
    './_base_/models/convmlp_classifier.py',
    './_base_/datasets/flowers102_224.py',
    './_base_/schedules/finetune_50e.py',
    'mmpretrain::_base_/default_runtime.py',
]
model = dict(
    backbone=dict(
        arch='m',
        init_cfg=dict(type='Pretrained',
                      checkpoint='https://shi-labs.com/projects/convmlp/checkpoints/convmlp_m_imagenet.pth')),
    head=dict(num_classes=102, in_channels=512))
