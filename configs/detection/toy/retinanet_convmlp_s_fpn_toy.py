# RetinaNet + ConvMLP-S trained from scratch on the bundled toy set: the README's main job (make demo).
_base_ = ['../_base_/models/convmlp_retinanet.py', './_toy_coco.py']

# From scratch: the toy set is no ImageNet, and the demo must run offline.
model = dict(backbone=dict(init_cfg=None), bbox_head=dict(num_classes=3))
