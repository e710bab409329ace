# ConvMLP-S on ImageNet-1k with the official recipe (configs/classification/convmlp_s_imagenet.yml of the paper's
# code, timm defaults of its classification.py) on mmpretrain's bases: batch 128 per GPU, AdamW lr 5e-4, weight
# decay 0.05 (none on norms and biases), warm-up from lr 1e-4 over 5 epochs (stepped per epoch), cosine to 1e-5
# over 300 epochs, then 10 cool-down epochs at 1e-5 (310 in all), RandAugment m9-mstd0.5, random erasing 0.25,
# Mixup/CutMix, label smoothing 0.1, model EMA 0.99996, bicubic 224 crops, test crop ratio 0.9, seed 42.
# Deliberate differences are listed in docs/model_zoo.md ("Recipe notes").
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
# timm's schedule, epoch by epoch (convmlp_mm.TimmCosineLR): 1e-4 + e * (5e-4 - 1e-4) / 5 for e < 5, then
# 1e-5 + (5e-4 - 1e-5) * (1 + cos(pi * e / 300)) / 2 (not shifted by the warm-up), 1e-5 from epoch 300.
param_scheduler = [dict(type='convmlp_mm.TimmCosineLR', t_max=300, eta_min=1e-5, warmup_steps=5, warmup_lr=1e-4)]
train_cfg = dict(max_epochs=310)
randomness = dict(seed=42)
custom_hooks = [dict(type='EMAHook', momentum=4e-5, priority='ABOVE_NORMAL')]
