_base_ = '../retinanet_convmlp_m_fpn.py'
# The backbone in its deployed structure, for checkpoints written by
# tools/model_converters/reparameterize_model.py (inference only).
model = dict(backbone=dict(deploy=True, init_cfg=None))
