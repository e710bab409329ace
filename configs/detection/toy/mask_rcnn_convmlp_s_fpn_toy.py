# Mask R-CNN + ConvMLP-S trained from scratch on the bundled toy set (boxes and instance masks).
_base_ = ['../_base_/models/convmlp_mask_rcnn.py', './_toy_coco.py']

# Sized for two CPU cores: 128-channel FPN/RPN/RoI features, a 256-wide box head, a 2-conv mask head and
# fewer proposals than COCO's (the full model takes ~15 s an iteration here).
model = dict(
    backbone=dict(init_cfg=None),  # from scratch: the toy set is no ImageNet, and the run must work offline
    neck=dict(out_channels=128),
    rpn_head=dict(in_channels=128, feat_channels=128),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=128),
        bbox_head=dict(in_channels=128, fc_out_channels=256, num_classes=3),
        mask_roi_extractor=dict(out_channels=128),
        mask_head=dict(num_convs=2, in_channels=128, conv_out_channels=128, num_classes=3)),
    train_cfg=dict(rpn_proposal=dict(nms_pre=1000, max_per_img=300), rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=300)))
val_evaluator = dict(metric=['bbox', 'segm'])
test_evaluator = dict(metric=['bbox', 'segm'])
