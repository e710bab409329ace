# ConvMLP-S fine-tuned on CIFAR-10 from the official ImageNet weights (paper results: docs/model_zoo.md).
_base_ = ['./_base_/convmlp_s_finetune.py', './_base_/datasets/cifar10_224.py']
model = dict(head=dict(num_classes=10))
