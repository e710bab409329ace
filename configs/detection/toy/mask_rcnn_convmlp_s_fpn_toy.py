# Mask R-CNN + ConvMLP-S trained from scratch on the bundled toy set (boxes and instance masks).
_base_ = ['../_base_/models/convmlp_mask_rcnn.py', './_toy_coco.py']

model = dict(backbone=dict(init_cfg=None),
             roi_head=dict(bbox_head=dict(num_classes=3), mask_head=dict(num_classes=3)))
val_evaluator = dict(metric=['bbox', 'segm'])
test_evaluator = dict(metric=['bbox', 'segm'])
