# ConvMLP-M fine-tuned on CIFAR-10: the ConvMLP-S config with the M backbone.
_base_ = './convmlp_s_cifar10.py'
model = dict(
    backbone=dict(
        arch='m',
        init_cfg=dict(checkpoint='https://shi-labs.com/projects/convmlp/checkpoints/convmlp_m_imagenet.pth')),
    head=dict(in_channels=512))
