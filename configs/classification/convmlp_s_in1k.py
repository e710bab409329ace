# ConvMLP-S on ImageNet-1k: the official recipe (configs/classification/convmlp_s_imagenet.yml of the paper's
# code) on mmpretrain's bases. 300 epochs, batch 128 x 8 GPUs, AdamW lr 5e-4, weight decay 0.05 (none on
# norms and biases), 5 warm-up epochs then cosine to 1e-5, RandAugment m9-mstd0.5, random erasing 0.25,
# Mixup/CutMix, label smoothing 0.1, model EMA 0.99996, bicubic 224 crops, test crop ratio 0.9.
_base_ = [
    './_base_/models/convmlp_classifier.py',
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    './_base_/default_runtime.py',
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=248, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=128)
val_dataloader = dict(batch_size=128, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(optimizer=dict(lr=5e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=2e-3, by_epoch=True, end=5, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=5),
]
custom_hooks = [dict(type='EMAHook', momentum=4e-5, priority='ABOVE_NORMAL')]
