# CIFAR-100 at 224x224, the same fine-tuning pipelines as CIFAR-10.
_base_ = './cifar10_224.py'

# The official YAML's normalization (mean 0.5071/0.4867/0.4408, std 0.2675/0.2565/0.2761, of pixels in 0..1).
data_preprocessor = dict(num_classes=100, mean=[129.3105, 124.1085, 112.404], std=[68.2125, 65.4075, 70.4055])
train_dataloader = dict(dataset=dict(type='CIFAR100', data_root='data/cifar100'))
val_dataloader = dict(dataset=dict(type='CIFAR100', data_root='data/cifar100'))
test_dataloader = val_dataloader
