# CIFAR-10 upsampled to 224x224 with the ImageNet recipe's augmentations, as the paper's fine-tuning does
# (official configs/classification/finetuned/*.yml: crop scale 0.8-1.0, bicubic, RandAugment m9-mstd0.5,
# random erasing 0.25). Batch 128.
_base_ = 'mmpretrain::_base_/datasets/cifar10_bs16.py'

# The official YAML's normalization (mean 0.4914/0.4822/0.4465, std 0.2470/0.2435/0.2616, of pixels in 0..1),
# not mmpretrain's CIFAR-10 std (0.2023/0.1994/0.2010).
data_preprocessor = dict(mean=[125.307, 122.961, 113.8575], std=[62.985, 62.0925, 66.708])

train_pipeline = [
    dict(type='RandomResizedCrop', scale=224, crop_ratio_range=(0.8, 1.0), backend='pillow',
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandAugment', policies='timm_increasing', num_policies=2, total_level=10, magnitude_level=9,
         magnitude_std=0.5, hparams=dict(pad_val=[125, 123, 114], interpolation='bicubic')),
    dict(type='RandomErasing', erase_prob=0.25, mode='rand', min_area_ratio=0.02, max_area_ratio=1 / 3),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='Resize', scale=224, backend='pillow', interpolation='bicubic'),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=128, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=128, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
