"""Re-parameterisation as a user does it: tools/model_converters/reparameterize_model.py writes the deployed
checkpoint, the deploy config (configs/<task>/deploy/) loads it strictly and gives the trained model's
answers, in-process and through tools/test.py."""
import re
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from convmlp_mm.apis import AlreadyDeployedError, deploy_config_of, init_model, reparameterize
from convmlp_mm.errors import UserError

from ..conftest import ROOT, random_checkpoint, run_tool, toy_options

pytestmark = pytest.mark.matrix
CONFIGS = ROOT / 'configs'
DEPLOY_CONFIGS = sorted(CONFIGS.rglob('deploy/*_deploy.py'))


def trained_checkpoint(config: Path, path: Path) -> Path:
    """Random weights with non-trivial BatchNorm statistics and norm affines in the backbone, so that a
    wrong fold shows in the outputs; the meta a Runner writes (class names) included."""
    random_checkpoint(str(config), path)
    ckpt = torch.load(path)
    generator = torch.Generator().manual_seed(0)
    for key, value in ckpt['state_dict'].items():
        if not key.startswith('backbone.') or not value.is_floating_point():
            continue
        if key.endswith('running_var'):
            value.copy_(torch.rand(value.shape, generator=generator) + 0.5)
        elif key.endswith('running_mean') or (value.dim() == 1 and key.endswith('bias')):
            value.copy_(torch.randn(value.shape, generator=generator) * 0.1)
        elif value.dim() == 1:
            value.copy_(1 + torch.randn(value.shape, generator=generator) * 0.1)
    ckpt['meta'] = dict(dataset_meta=dict(classes=('square', 'circle', 'triangle')))
    torch.save(ckpt, path)
    return path


@pytest.mark.parametrize('deploy_config', DEPLOY_CONFIGS, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_every_config_has_a_deploy_config_that_only_sets_deploy(deploy_config):
    base = deploy_config.parent.parent / deploy_config.name.replace('_deploy.py', '.py')
    assert deploy_config_of(base) == deploy_config
    deployed, trained = Config.fromfile(str(deploy_config)), Config.fromfile(str(base))
    assert deployed.model.backbone.pop('deploy') is True and deployed.model.backbone.pop('init_cfg') is None
    trained.model.backbone.pop('init_cfg', None)
    assert deployed.model.to_dict() == trained.model.to_dict()


def test_each_model_config_has_its_deploy_config():
    configs = [p for p in CONFIGS.rglob('*.py') if '_base_' not in p.parts and 'deploy' not in p.parts
               and not p.name.startswith('_')]
    assert len(configs) == len(DEPLOY_CONFIGS) == 25
    assert all(deploy_config_of(p) for p in configs)


@pytest.mark.parametrize('config', ['detection/toy/retinanet_convmlp_s_fpn_toy.py',
                                    'detection/toy/mask_rcnn_convmlp_s_fpn_toy.py',
                                    'segmentation/toy/fpn_convmlp_s_toy.py',
                                    'classification/toy/convmlp_s_toy.py'])
def test_converted_checkpoint_loads_strictly_and_gives_the_same_answers(config, tmp_path):
    config = CONFIGS / config
    ckpt = trained_checkpoint(config, tmp_path / 'trained.pth')
    proc = run_tool('model_converters/reparameterize_model.py', str(config), str(ckpt), str(tmp_path / 'dep.pth'))
    deploy_config = deploy_config_of(config)
    assert f'test it with: python tools/test.py {deploy_config} {tmp_path / "dep.pth"}' in proc.stdout
    converted = torch.load(tmp_path / 'dep.pth')
    assert converted['meta']['dataset_meta'] == dict(classes=['square', 'circle', 'triangle']) or \
        converted['meta']['dataset_meta'] == dict(classes=('square', 'circle', 'triangle'))
    assert converted['meta']['deploy'] is True
    assert any('.fused_block.' in k for k in converted['state_dict'])
    assert not any('running_mean' in k for k in converted['state_dict'] if k.startswith('backbone.'))

    trained = init_model(str(config), str(ckpt))
    deployed = init_model(str(deploy_config), str(tmp_path / 'dep.pth'))  # strict: raises on any other key
    assert deployed.backbone.deploy
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        want, got = trained.extract_feat(x), deployed.extract_feat(x)
    want = want if isinstance(want, (tuple, list)) else [want]
    got = got if isinstance(got, (tuple, list)) else [got]
    assert all((g - w).abs().max() <= 1e-4 * max(1.0, float(w.abs().max())) for g, w in zip(got, want))
    with pytest.raises(UserError, match='deployed structure|does not fit'):
        init_model(str(config), str(tmp_path / 'dep.pth'))  # the training config does not take it


@pytest.mark.e2e
def test_the_deployed_checkpoint_through_the_tools(toy_coco, tmp_path):
    """tools/test.py gives the trained model's metrics and tools/demo.py draws (the ONNX export of a deploy config:
    tests/test_deploy/test_onnx_models.py)."""
    config = CONFIGS / 'detection/toy/retinanet_convmlp_s_fpn_toy.py'
    deploy_config, deployed = deploy_config_of(config), tmp_path / 'dep.pth'
    ckpt = trained_checkpoint(config, tmp_path / 'trained.pth')
    reparameterize(config, str(ckpt), deployed)
    lines = []
    for cfg, weights in ((config, ckpt), (deploy_config, deployed)):
        proc = run_tool('test.py', str(cfg), str(weights), '--work-dir', str(tmp_path / cfg.stem),
                        '--cfg-options', *toy_options(toy_coco, config))
        lines.append(re.findall(r'bbox_mAP_copypaste: .*', proc.stdout + proc.stderr))
    assert lines[0] and lines[0] == lines[1]
    image = sorted((toy_coco / 'val').glob('*.png'))[0]
    run_tool('demo.py', str(image), str(deploy_config), str(deployed), '--out-dir', str(tmp_path / 'demo'))
    assert (tmp_path / 'demo' / 'vis' / image.name).is_file()


def test_converter_refusals(tmp_path):
    config = CONFIGS / 'classification/toy/convmlp_s_toy.py'
    ckpt = trained_checkpoint(config, tmp_path / 'trained.pth')
    before = ckpt.read_bytes()
    with pytest.raises(UserError, match='is the checkpoint being converted'):
        reparameterize(config, str(ckpt), ckpt)
    assert ckpt.read_bytes() == before  # nothing lost
    with pytest.raises(AlreadyDeployedError, match='deploy=True.*the config the checkpoint was trained with'):
        reparameterize(deploy_config_of(config), str(ckpt), tmp_path / 'dep.pth')
    proc = run_tool('model_converters/reparameterize_model.py', str(config), str(tmp_path / 'missing.pth'),
                    str(tmp_path / 'dep.pth'), check=False)
    assert proc.returncode != 0 and 'missing.pth' in proc.stderr
    assert not (tmp_path / 'dep.pth').exists()
