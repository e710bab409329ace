# ConvMLP-S trained from scratch on the bundled toy set (python tools/misc/make_toy_data.py cls data/toy_cls): one
# shape per 64x64 image, 3 classes, 1500 train / 300 val images, 10 epochs on a 2-core CPU. It proves that the
# mmpretrain path (pipeline, ImageClassifier with ConvMLP, Runner, evaluation) learns; it is not a recipe.
# The paper's classifier is kept whole (final LayerNorm, pooling, linear head); Mixup/CutMix, label
# smoothing and drop path, which regularise 300 ImageNet epochs, are off for 10 small epochs.
_base_ = ['../_base_/models/convmlp_classifier.py', '../_base_/default_runtime.py']

toy_classes = ('square', 'circle', 'triangle')
model = dict(
    backbone=dict(drop_path_rate=0.0),
    head=dict(num_classes=len(toy_classes), loss=dict(_delete_=True, type='CrossEntropyLoss', loss_weight=1.0)),
    train_cfg=None)
data_preprocessor = dict(num_classes=len(toy_classes), mean=[127.5] * 3, std=[64.0] * 3, to_rgb=True)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
toy_dataset = dict(type='CustomDataset', data_root='data/toy_cls', metainfo=dict(classes=toy_classes))
train_dataloader = dict(
    batch_size=32,
    num_workers=0,  # two cores: loading in the main process beats competing with the model
    persistent_workers=False,  # mmpretrain's tools/train.py sets True by default, which needs workers
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(**toy_dataset, data_prefix='train', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=64,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(**toy_dataset, data_prefix='val', pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1,))
test_evaluator = val_evaluator

# AdamW 5e-4 with one warm-up epoch, then cosine: the settings of our plain-PyTorch trial that reached 98%.
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=5e-4, weight_decay=0.05))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, end=1, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=1, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=10, val_interval=5)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=5, max_keep_ckpts=1))
randomness = dict(seed=0)
