"""Official ImageNet checkpoints: variant detection, conversion, and identical logits after conversion.

The official-format files are written here. The reference logits come from a functional
re-statement of the official classifier's forward pass over the file's tensors, independent of
convmlp_mm's modules.
"""
import argparse
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint

from convmlp_mm import ConvMLP
from convmlp_mm.checkpoint_safety import load_checkpoint_file
from convmlp_mm.models.official import NotConvMLPCheckpointError, detect_arch
from convmlp_mm.models.pretrained import load_pretrained

from ..conftest import ROOT, official_file, official_state_dict, run_tool

pytestmark = pytest.mark.matrix

CLS = ROOT / 'configs' / 'classification'


def reference_logits(sd: dict, x: torch.Tensor) -> torch.Tensor:
    """The official classifier's forward pass, written with torch.nn.functional over ``sd``."""
    def bn(t, p):
        return F.batch_norm(t, sd[p + '.running_mean'], sd[p + '.running_var'], sd[p + '.weight'],
                            sd[p + '.bias'], False, 0.0, 1e-5)

    def ln(t, p):
        return F.layer_norm(t, t.shape[-1:], sd[p + '.weight'], sd[p + '.bias'])

    def mlp(t, p):
        hidden = F.gelu(F.linear(t, sd[p + '.fc1.weight'], sd[p + '.fc1.bias']))
        return F.linear(hidden, sd[p + '.fc2.weight'], sd[p + '.fc2.bias'])

    for i, stride in ((0, 2), (3, 1), (6, 1)):
        x = F.relu(bn(F.conv2d(x, sd[f'tokenizer.block.{i}.weight'], stride=stride, padding=1),
                      f'tokenizer.block.{i + 1}'))
    x = F.max_pool2d(x, 3, 2, 1)
    j = 0
    while f'conv_stages.conv_blocks.{j}.0.weight' in sd:
        p = f'conv_stages.conv_blocks.{j}'
        y = F.relu(bn(F.conv2d(x, sd[p + '.0.weight']), p + '.1'))
        y = F.relu(bn(F.conv2d(y, sd[p + '.3.weight'], padding=1), p + '.4'))
        x = x + F.relu(bn(F.conv2d(y, sd[p + '.6.weight']), p + '.7'))
        j += 1
    x = F.conv2d(x, sd['conv_stages.downsample.weight'], sd['conv_stages.downsample.bias'], stride=2, padding=1)
    x = x.permute(0, 2, 3, 1)
    stage = 0
    while f'stages.{stage}.blocks.0.norm1.weight' in sd:
        b = 0
        while f'stages.{stage}.blocks.{b}.norm1.weight' in sd:
            p = f'stages.{stage}.blocks.{b}'
            x = x + mlp(ln(x, p + '.norm1'), p + '.channel_mlp1')
            x = F.conv2d(ln(x, p + '.connect_norm').permute(0, 3, 1, 2), sd[p + '.connect.weight'], padding=1,
                         groups=x.shape[-1]).permute(0, 2, 3, 1)
            x = x + mlp(ln(x, p + '.norm2'), p + '.channel_mlp2')
            b += 1
        p = f'stages.{stage}.downsample_mlp.downsample'
        if p + '.weight' in sd:
            x = F.conv2d(x.permute(0, 3, 1, 2), sd[p + '.weight'], sd[p + '.bias'], stride=2,
                         padding=1).permute(0, 2, 3, 1)
        stage += 1
    x = ln(x.flatten(1, 2), 'norm').mean(dim=1)
    return F.linear(x, sd['head.weight'], sd['head.bias'])


@pytest.mark.parametrize('arch', ['s', 'm', 'l'])
def test_detects_variant(tmp_path, arch):
    state = official_file(arch, tmp_path / 'w.pth')
    assert detect_arch(state) == arch


@pytest.mark.parametrize('arch', ['s', 'l'])
def test_converted_classifier_gives_identical_logits(tmp_path, arch):
    from mmpretrain.registry import MODELS
    state = official_file(arch, tmp_path / f'convmlp_{arch}_imagenet.pth')
    proc = run_tool('model_converters/convert_official.py',
                    str(tmp_path / f'convmlp_{arch}_imagenet.pth'), str(tmp_path / 'out'))
    assert f'ConvMLP-{arch.upper()} classifier, 1000 classes (ImageNet-1k)' in proc.stdout
    assert 'released weights' in proc.stdout and f'convmlp_{arch}_backbone.pth' in proc.stdout
    cfg = Config.fromfile(str(CLS / f'convmlp_{arch}_in1k.py'))
    init_default_scope('mmpretrain')
    model = MODELS.build(cfg.model).eval()
    load_checkpoint(model, str(tmp_path / 'out' / f'convmlp_{arch}_in1k.pth'), strict=True)
    x = torch.rand(2, 3, 224, 224) * 4 - 2
    with torch.no_grad():
        ours = model(x, mode='tensor')
        reference = reference_logits(state, x)
    diff = (ours - reference).abs().max().item()
    print(f'ConvMLP-{arch.upper()}: max abs logit difference {diff:.2e}')
    assert diff <= 1e-5


def converted_logits(config: Path, checkpoint: Path, x: torch.Tensor) -> torch.Tensor:
    """Logits of the config's mmpretrain classifier with the checkpoint loaded strictly."""
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    model = MODELS.build(Config.fromfile(str(config)).model).eval()
    load_checkpoint(model, str(checkpoint), strict=True)
    with torch.no_grad():
        return model(x, mode='tensor')


@pytest.mark.parametrize('arch, dataset, num_classes', [('s', 'cifar10', 10), ('m', 'flowers102', 102)])
def test_fine_tuned_classifier_is_named_after_its_data_set(tmp_path, arch, dataset, num_classes):
    official = tmp_path / f'convmlp_{arch}_{dataset}.pth'
    state = official_file(arch, official, num_classes=num_classes)
    proc = run_tool('model_converters/convert_official.py', str(official), str(tmp_path / 'out'))
    config = f'configs/classification/convmlp_{arch}_{dataset}.py'
    assert f'{num_classes} classes' in proc.stdout and f'for {config}' in proc.stdout
    assert sorted(p.name for p in (tmp_path / 'out').iterdir()) == [f'convmlp_{arch}_{dataset}.pth']
    x = torch.rand(2, 3, 224, 224) * 4 - 2
    diff = (converted_logits(ROOT / config, tmp_path / 'out' / f'convmlp_{arch}_{dataset}.pth', x)
            - reference_logits(state, x)).abs().max().item()
    assert diff <= 1e-5


def test_head_of_no_known_data_set_is_converted_with_a_note(tmp_path):
    official_file('s', tmp_path / 'pets.pth', num_classes=37)
    proc = run_tool('model_converters/convert_official.py', str(tmp_path / 'pets.pth'), str(tmp_path / 'out'))
    assert '37 classes (none of the paper data sets)' in proc.stdout
    assert 'model.head.num_classes=37' in proc.stdout
    assert [p.name for p in (tmp_path / 'out').iterdir()] == ['convmlp_s_37cls.pth']


class _RunsCode:
    def __reduce__(self):
        return exec, ('raise SystemExit("code ran")',)


@pytest.mark.parametrize('ema', [False, True], ids=['trained', 'ema'])
def test_timm_training_checkpoint(tmp_path, ema):
    """What timm's CheckpointSaver writes during the official training: weights of a DDP model, EMA
    weights, optimizer state, the arguments as an argparse.Namespace."""
    trained, averaged = official_state_dict('s', 10), official_state_dict('s', 10)
    averaged = {k: v + 0.01 if v.is_floating_point() else v for k, v in averaged.items()}
    args = argparse.Namespace(model='convmlp_s_classification', lr=3e-4, epochs=50, mixup=0.8, mean=(0.4914,),
                              model_ema=True, dataset='cifar10')
    checkpoint = dict(epoch=59, arch='convmlp_s_classification', version=2, args=args, metric=98.0,
                      state_dict={f'module.{k}': v for k, v in trained.items()}, state_dict_ema=averaged,
                      optimizer=dict(state={}, param_groups=[dict(lr=1e-5, params=[0, 1])]))
    torch.save(checkpoint, tmp_path / 'last.pth')
    proc = run_tool('model_converters/convert_official.py', str(tmp_path / 'last.pth'), str(tmp_path / 'out'),
                    *(['--ema'] if ema else []))
    assert 'timm training checkpoint (epoch 59, model convmlp_s_classification)' in proc.stdout
    assert ('EMA weights (state_dict_ema)' if ema else 'which --ema converts instead') in proc.stdout
    converted = load_checkpoint_file(tmp_path / 'out' / 'convmlp_s_cifar10.pth')['state_dict']
    want = averaged if ema else trained
    assert all(torch.equal(converted[f'backbone.{k}'], v) for k, v in want.items() if not k.startswith('head.'))
    assert torch.equal(converted['head.fc.weight'], want['head.weight'])
    # The Namespace is allowed for this read only: anything else in such a file is still refused.
    checkpoint['args'] = _RunsCode()
    torch.save(checkpoint, tmp_path / 'hostile.pth')
    proc = run_tool('model_converters/convert_official.py',
                    str(tmp_path / 'hostile.pth'), str(tmp_path / 'o2'), check=False)
    assert proc.returncode == 1
    last_line = proc.stderr.strip().splitlines()[-1]
    assert last_line.startswith(f'error: {tmp_path / "hostile.pth"} was not loaded: it refers to builtins.exec')
    assert 'code ran' not in proc.stdout + proc.stderr and not (tmp_path / 'o2').exists()


def test_ema_flag_on_released_weights_is_a_clear_error(tmp_path):
    official_file('s', tmp_path / 'convmlp_s_imagenet.pth')
    proc = run_tool('model_converters/convert_official.py',
                    str(tmp_path / 'convmlp_s_imagenet.pth'), str(tmp_path / 'o'), '--ema',
                    check=False)
    assert proc.returncode == 1 and 'plain state_dict (released weights)' in proc.stderr and 'drop --ema' in proc.stderr


def test_backbone_file_fits_detection_backbone_exactly(tmp_path):
    official_file('m', tmp_path / 'convmlp_m_imagenet.pth')
    run_tool('model_converters/convert_official.py', str(tmp_path / 'convmlp_m_imagenet.pth'), str(tmp_path))
    missing, unexpected = load_pretrained(ConvMLP(arch='m'), str(tmp_path / 'convmlp_m_backbone.pth'))
    assert missing == [] and unexpected == []


def test_refuses_foreign_and_already_converted_files(tmp_path):
    torch.save({'conv1.weight': torch.zeros(64, 3, 7, 7), 'fc.weight': torch.zeros(1000, 2048)},
               tmp_path / 'resnet50.pth')
    proc = run_tool('model_converters/convert_official.py',
                    str(tmp_path / 'resnet50.pth'), str(tmp_path / 'o'), check=False)
    assert proc.returncode != 0 and 'not a ConvMLP checkpoint' in proc.stderr and 'resnet50.pth' in proc.stderr
    assert not (tmp_path / 'o').exists()
    official_file('s', tmp_path / 'convmlp_s_imagenet.pth')
    run_tool('model_converters/convert_official.py', str(tmp_path / 'convmlp_s_imagenet.pth'), str(tmp_path / 'o'))
    proc = run_tool('model_converters/convert_official.py',
                    str(tmp_path / 'o' / 'convmlp_s_in1k.pth'), str(tmp_path / 'p'),
                    check=False)
    assert proc.returncode != 0 and 'already' in proc.stderr


def test_truncated_official_file_is_refused(tmp_path):
    state = official_file('s', tmp_path / 'w.pth')
    del state['stages.2.blocks.1.norm1.weight']
    with pytest.raises(NotConvMLPCheckpointError, match='matches none of the variants'):
        detect_arch(state)


def test_demo_prints_top5_classes(tmp_path):
    official_file('s', tmp_path / 'convmlp_s_imagenet.pth')
    run_tool('model_converters/convert_official.py', str(tmp_path / 'convmlp_s_imagenet.pth'), str(tmp_path))
    from PIL import Image
    Image.new('RGB', (96, 80), (120, 30, 200)).save(tmp_path / 'img.png')
    proc = run_tool('demo.py', str(tmp_path / 'img.png'), str(CLS / 'convmlp_s_in1k.py'),
                    str(tmp_path / 'convmlp_s_in1k.pth'), '--out-dir', str(tmp_path / 'out'))
    found = re.search(r'image 0: (.*)$', proc.stdout, re.MULTILINE)
    assert found, proc.stdout
    # ImageNet's class names hold commas ('stinkhorn, carrion fungus'), so count the five probabilities
    assert len(re.findall(r' \d\.\d{3}(?:, |$)', found.group(1))) == 5, found.group(1)


@pytest.mark.parametrize('config, name, path', [('convmlp_s_in1k.py', 'ImageNet', 'data/imagenet'),
                                                ('convmlp_m_cifar10.py', 'CIFAR-10', 'data/cifar10')])
def test_train_without_classification_data_explains_where_it_looked(tmp_path, config, name, path):
    # Checked before anything is built: mmpretrain's CIFAR datasets would otherwise try to download.
    proc = run_tool('train.py', str(CLS / config), cwd=tmp_path, check=False)
    assert proc.returncode != 0 and f'{name} not found' in proc.stderr
    assert str(tmp_path / path) in proc.stderr and 'Traceback' not in proc.stderr
