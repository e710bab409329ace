"""Loading checkpoints in the official format (written here) and in OpenMMLab's format."""
import pytest
import torch

from convmlp_mm import ConvMLP
from convmlp_mm.models.pretrained import PretrainedWeightsError, load_pretrained

from ..conftest import official_state_dict

pytestmark = pytest.mark.matrix


@pytest.fixture
def official_s(tmp_path):
    state = official_state_dict('s')
    path = tmp_path / 'convmlp_s_imagenet.pth'
    torch.save(state, path)
    return path, state


def assert_backbone_equals(model, state):
    own = model.state_dict()
    for key, value in own.items():
        assert torch.equal(value, state[key]), key


def test_official_file_loads_unchanged_through_init_cfg(official_s):
    path, state = official_s
    model = ConvMLP(arch='s', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    assert_backbone_equals(model, state)
    assert set(state) - set(model.state_dict()) == {'norm.weight', 'norm.bias', 'head.weight', 'head.bias'}


def test_missing_and_unexpected_keys_are_reported_by_name(official_s):
    path, state = official_s
    partial = {k: v for k, v in state.items() if not k.startswith('stages.2.')}
    torch.save(partial, path)
    missing, unexpected = load_pretrained(ConvMLP(arch='s'), str(path))
    assert missing and all(k.startswith('stages.2.') for k in missing)
    assert 'stages.2.blocks.0.channel_mlp1.fc1.weight' in missing
    assert sorted(unexpected) == ['head.bias', 'head.weight', 'norm.bias', 'norm.weight']


def test_classifier_with_final_norm_takes_norm_keys(official_s):
    path, state = official_s
    model = ConvMLP(arch='s', final_norm=True)
    missing, unexpected = load_pretrained(model, str(path))
    assert missing == [] and sorted(unexpected) == ['head.bias', 'head.weight']
    assert torch.equal(model.norm.weight, state['norm.weight'])


@pytest.mark.parametrize('prefix', [None, 'backbone', 'backbone.'])
def test_openmmlab_checkpoint_with_backbone_prefix(tmp_path, official_s, prefix):
    _, state = official_s
    wrapped = {'meta': {'epoch': 12}, 'state_dict': {'backbone.' + k: v for k, v in state.items()}}
    wrapped['state_dict']['neck.lateral_convs.0.conv.weight'] = torch.zeros(256, 64, 1, 1)
    path = tmp_path / 'retinanet_epoch_12.pth'
    torch.save(wrapped, path)
    model = ConvMLP(arch='s', init_cfg=dict(type='Pretrained', checkpoint=str(path), prefix=prefix))
    model.init_weights()
    assert_backbone_equals(model, state)


def test_wrong_prefix_is_an_error(official_s):
    path, _ = official_s
    with pytest.raises(PretrainedWeightsError, match="prefix 'student.'"):
        load_pretrained(ConvMLP(arch='s'), str(path), prefix='student')


def test_file_matching_no_key_is_an_error_not_a_random_init(tmp_path):
    path = tmp_path / 'resnet.pth'
    torch.save({'conv1.weight': torch.zeros(64, 3, 7, 7), 'fc.weight': torch.zeros(1000, 2048)}, path)
    model = ConvMLP(arch='s', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(PretrainedWeightsError, match='shares no parameter name') as info:
        model.init_weights()
    assert 'resnet.pth' in str(info.value) and 'conv1.weight' in str(info.value)


def test_other_variant_reports_shape_mismatches_by_name(tmp_path):
    path = tmp_path / 'convmlp_l_imagenet.pth'
    torch.save(official_state_dict('l'), path)
    with pytest.raises(PretrainedWeightsError, match='shape mismatch') as info:
        load_pretrained(ConvMLP(arch='s'), str(path))
    assert 'tokenizer.block.0.weight: checkpoint (48, 3, 3, 3) vs model (32, 3, 3, 3)' in str(info.value)


def test_missing_file_says_how_to_go_on(tmp_path):
    with pytest.raises(PretrainedWeightsError, match='not found') as info:
        load_pretrained(ConvMLP(arch='s'), str(tmp_path / 'nope.pth'))
    assert 'init_cfg=None' in str(info.value)


def test_unreachable_url_says_offline_and_how_to_go_on(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))  # no cached copy of the file
    # Port 9 on loopback: nothing listens, so the download fails at once, as it does offline.
    url = 'http://127.0.0.1:9/convmlp_s_imagenet.pth'
    with pytest.raises(PretrainedWeightsError, match='offline') as info:
        load_pretrained(ConvMLP(arch='s'), url)
    message = str(info.value)
    assert url in message and 'init_cfg.checkpoint=/path/to/convmlp_s_imagenet.pth' in message
    assert 'init_cfg=None' in message


def test_corrupt_file_names_the_file(tmp_path):
    path = tmp_path / 'truncated.pth'
    torch.save(official_state_dict('s'), path)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(PretrainedWeightsError, match='truncated.pth'):
        load_pretrained(ConvMLP(arch='s'), str(path))
