# ConvMLP-L fine-tuned on CIFAR-100: the ConvMLP-S config with the L backbone.
_base_ = './convmlp_s_cifar100.py'
model = dict(
    backbone=dict(
        arch='l',
        init_cfg=dict(checkpoint='https://shi-labs.com/projects/convmlp/checkpoints/convmlp_l_imagenet.pth')),
    head=dict(in_channels=768))
train_dataloader = dict(batch_size=64)  # official: 64 for every L model
auto_scale_lr = dict(base_batch_size=64)
