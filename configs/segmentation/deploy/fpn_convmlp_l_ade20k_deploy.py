_base_ = '../fpn_convmlp_l_ade20k.py'
# The backbone in its deployed structure, for checkpoints written by
# tools/model_converters/reparameterize_model.py (inference only).
model = dict(backbone=dict(deploy=True, init_cfg=None))
