"""The paper's classifier sizes: 9.0M / 17.4M / 42.7M parameters, 2.4 / 3.9 / 9.9 GMACs at 224x224."""
import pytest
from mmengine.analysis import get_model_complexity_info
from mmengine.registry import DefaultScope

import convmlp_mm  # noqa: F401  (registers ConvMLP)

PAPER = {'s': (9.0, 2.4), 'm': (17.4, 3.9), 'l': (42.7, 9.9)}


@pytest.mark.parametrize('arch', ['s', 'm', 'l'])
def test_classifier_params_and_macs_match_paper(arch):
    from mmpretrain.registry import MODELS
    dim = 768 if arch == 'l' else 512
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(dict(
            type='ImageClassifier',
            backbone=dict(type='ConvMLP', arch=arch, out_indices=-1, final_norm=True),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=1000, in_channels=dim)))
    model.eval()
    params = sum(p.numel() for p in model.parameters())
    info = get_model_complexity_info(model, input_shape=(3, 224, 224), show_table=False, show_arch=False)
    # mmengine's analysis counts one multiply-add as one "flop", i.e. it reports MACs.
    assert (round(params / 1e6, 1), round(info['flops'] / 1e9, 1)) == PAPER[arch]
