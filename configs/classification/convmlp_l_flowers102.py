# ConvMLP-L fine-tuned on Flowers-102: the ConvMLP-M config (lr 3e-4 down to 1e-8) with the L backbone and batch 64,
# as the official convmlp_l_flowers102.yml.
_base_ = './convmlp_m_flowers102.py'
model = dict(
    backbone=dict(
        arch='l',
        init_cfg=dict(checkpoint='https://shi-labs.com/projects/convmlp/checkpoints/convmlp_l_imagenet.pth')),
    head=dict(in_channels=768))
train_dataloader = dict(batch_size=64)  # official: 64 for every L model
auto_scale_lr = dict(base_batch_size=64)
