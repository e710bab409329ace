# Oxford Flowers-102 at 224x224 with the fine-tuning augmentations (train on "trainval", test on "test").
# Layout (mmpretrain's Flowers102): data/flowers102/{jpg/, imagelabels.mat, setid.mat}.
_base_ = './cifar10_224.py'

data_preprocessor = dict(num_classes=102, mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                         to_rgb=True)
load = [dict(type='LoadImageFromFile')]
train_dataloader = dict(dataset=dict(_delete_=True, type='Flowers102', data_root='data/flowers102',
                                     split='trainval', pipeline=load + _base_.train_pipeline))
val_dataloader = dict(dataset=dict(_delete_=True, type='Flowers102', data_root='data/flowers102', split='test',
                                   pipeline=load + [dict(type='ResizeEdge', scale=248, edge='short',
                                                         backend='pillow', interpolation='bicubic'),
                                                    dict(type='CenterCrop', crop_size=224),
                                                    dict(type='PackInputs')]))
test_dataloader = val_dataloader
