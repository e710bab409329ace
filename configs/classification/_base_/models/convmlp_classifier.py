# The paper's classifier: ConvMLP-S, LayerNorm on the last feature map, global average pooling, a linear
# head; label smoothing 0.1 and Mixup (0.8) / CutMix (1.0), switched half-and-half, as in the official recipe.
custom_imports = dict(imports=['convmlp_mm'], allow_failed_imports=False)
model = dict(
    type='ImageClassifier',
    backbone=dict(type='ConvMLP', arch='s', out_indices=-1, final_norm=True),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=512,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        init_cfg=dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.0)),
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]))
