# Semantic FPN + ConvMLP-S trained from scratch on the bundled toy segmentation set (make demo-seg).
_base_ = ['../_base_/models/convmlp_fpn.py', './_toy_ade.py']

model = dict(
    # No 512x512 padding: the toy images are used whole (sides padded to a multiple of 32).
    data_preprocessor=dict(size=None, size_divisor=32),
    # From scratch: the toy set is no ImageNet, and the run must work offline.
    backbone=dict(init_cfg=None),
    # A slimmer FPN and head than ADE20K's (256/128 channels), to train in minutes on two CPU cores.
    neck=dict(out_channels=128),
    decode_head=dict(in_channels=[128, 128, 128, 128], channels=64, num_classes=4))
