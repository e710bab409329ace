# CIFAR-100 at 224x224, the same fine-tuning pipelines as CIFAR-10.
_base_ = './cifar10_224.py'

# Normalization as in mmpretrain's cifar100_bs16.py.
data_preprocessor = dict(num_classes=100, mean=[129.304, 124.070, 112.434], std=[68.170, 65.392, 70.418])
train_dataloader = dict(dataset=dict(type='CIFAR100', data_root='data/cifar100'))
val_dataloader = dict(dataset=dict(type='CIFAR100', data_root='data/cifar100'))
test_dataloader = val_dataloader
