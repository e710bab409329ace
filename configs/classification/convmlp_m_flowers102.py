# ConvMLP-M fine-tuned on Flowers-102: the ConvMLP-S config with the M backbone and lr 3e-4, as the official
# convmlp_m_flowers102.yml.
_base_ = './convmlp_s_flowers102.py'
model = dict(
    backbone=dict(
        arch='m',
        init_cfg=dict(checkpoint='https://shi-labs.com/projects/convmlp/checkpoints/convmlp_m_imagenet.pth')),
    head=dict(in_channels=512))
optim_wrapper = dict(optimizer=dict(lr=3e-4))
