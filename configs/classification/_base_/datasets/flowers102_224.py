# Oxford Flowers-102 at 224x224 with the fine-tuning augmentations, as the official finetuned/convmlp_*_flowers102.yml:
# train on the "train" split and validate on "val" (the split the paper's 99.5% is measured on; use
# --cfg-options test_dataloader.dataset.split=test for the test split), the YAML's own normalization, batch 96
# (S, M; the L config sets 64) and test images resized to 224 and center-cropped at a crop ratio of 1.0 (the
# Flowers configs also set the YAML's minimum lr, 1e-8). Layout (mmpretrain's Flowers102): data/flowers102/{jpg/, imagelabels.mat, setid.mat}.
_base_ = './cifar10_224.py'

data_preprocessor = dict(num_classes=102, mean=[111.0015, 96.2115, 73.236], std=[75.633, 62.6025, 68.799],
                         to_rgb=True)
load = [dict(type='LoadImageFromFile')]
test_pipeline = load + [dict(type='ResizeEdge', scale=224, edge='short', backend='pillow', interpolation='bicubic'),
                        dict(type='CenterCrop', crop_size=224),
                        dict(type='PackInputs')]
train_dataloader = dict(batch_size=96, dataset=dict(_delete_=True, type='Flowers102', data_root='data/flowers102',
                                                    split='train', pipeline=load + _base_.train_pipeline))
val_dataloader = dict(dataset=dict(_delete_=True, type='Flowers102', data_root='data/flowers102', split='val',
                                   pipeline=test_pipeline))
test_dataloader = val_dataloader
