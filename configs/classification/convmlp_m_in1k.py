# ConvMLP-M on ImageNet-1k, the same recipe as ConvMLP-S.
_base_ = './convmlp_s_in1k.py'
model = dict(backbone=dict(arch='m'), head=dict(in_channels=512))
