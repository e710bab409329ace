# RetinaNet + ConvMLP-S trained from scratch on the bundled toy set: the README's main job (make demo).
_base_ = ['../_base_/models/convmlp_retinanet.py', './_toy_coco.py']

model = dict(
    # From scratch: the toy set is no ImageNet, and the demo must run offline.
    backbone=dict(init_cfg=None),
    # A slimmer FPN and head than COCO's (256 channels, 4 convs): at stride 8 the full head costs more
    # than the backbone, and the toy run must finish in minutes on two CPU cores.
    neck=dict(out_channels=128),
    bbox_head=dict(num_classes=3, in_channels=128, feat_channels=128, stacked_convs=2))
