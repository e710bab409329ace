# ConvMLP-L on ImageNet-1k, the same recipe as ConvMLP-S.
_base_ = './convmlp_s_in1k.py'
model = dict(backbone=dict(arch='l'), head=dict(in_channels=768))
