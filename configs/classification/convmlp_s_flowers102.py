# ConvMLP-S fine-tuned on Flowers-102 from the official ImageNet weights (paper results: docs/model_zoo.md). The
# official convmlp_s_flowers102.yml trains with lr 5e-4 (3e-4 for M and L) down to a minimum lr of 1e-8.
_base_ = ['./_base_/convmlp_s_finetune.py', './_base_/datasets/flowers102_224.py']
model = dict(head=dict(num_classes=102))
optim_wrapper = dict(optimizer=dict(lr=5e-4))
param_scheduler = [dict(type='convmlp_mm.TimmCosineLR', t_max=50, eta_min=1e-8, warmup_steps=10, warmup_lr=1e-6)]
auto_scale_lr = dict(base_batch_size=96)
