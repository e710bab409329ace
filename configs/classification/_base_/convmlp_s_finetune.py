# Fine-tuning the ConvMLP-S classifier from the official ImageNet weights (the head starts anew); combine
# with a dataset base: _base_ = ['./_base_/convmlp_s_finetune.py', './_base_/datasets/DATASET_224.py'].
_base_ = ['./models/convmlp_classifier.py', './schedules/finetune_50e.py', './default_runtime.py']
model = dict(backbone=dict(init_cfg=dict(
    type='Pretrained', checkpoint='https://shi-labs.com/projects/convmlp/checkpoints/convmlp_s_imagenet.pth')))
