# Fine-tuning from ImageNet weights (official finetuned/*.yml with the timm defaults of classification.py): AdamW
# lr 3e-4, weight decay 0.05 (none on norms and biases), warm-up from lr 1e-6 over 10 epochs (stepped per epoch),
# cosine to 1e-5 over 50 epochs, then 10 cool-down epochs at the minimum (60 in all). The dataset configs set
# what differs per data set (batch size, Flowers' minimum lr and ConvMLP-S's Flowers lr).
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=3e-4, weight_decay=0.05, eps=1e-8, betas=(0.9, 0.999)),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0, flat_decay_mult=0.0))
# timm's schedule, epoch by epoch (convmlp_mm.TimmCosineLR; tests/test_configs/test_recipes.py checks every epoch).
param_scheduler = [dict(type='convmlp_mm.TimmCosineLR', t_max=50, eta_min=1e-5, warmup_steps=10, warmup_lr=1e-6)]
train_cfg = dict(by_epoch=True, max_epochs=60, val_interval=1)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=128)
