"""The ConvMLP backbone: shapes, levels, freezing, checkpointing, argument checks."""
import itertools
import math

import pytest
import torch
import torch.nn as nn

from convmlp_mm import ConvMLP

pytestmark = pytest.mark.matrix

CHANNELS = {'s': [64, 128, 256, 512], 'm': [64, 128, 256, 512], 'l': [96, 192, 384, 768]}
STRIDES = [4, 8, 16, 32]


@pytest.mark.parametrize('arch', ['s', 'm', 'l'])
@pytest.mark.parametrize('size', [(224, 224), (333, 517)])
def test_level_shapes(arch, size):
    model = ConvMLP(arch=arch).eval()
    with torch.no_grad():
        outs = model(torch.rand(1, 3, *size))
    assert model.out_channels == CHANNELS[arch]
    assert [tuple(o.shape) for o in outs] == [
        (1, c, math.ceil(size[0] / s), math.ceil(size[1] / s)) for c, s in zip(CHANNELS[arch], STRIDES)]
    assert all(o.is_contiguous() for o in outs)  # NCHW memory, the layout mmcv's compiled ops read


def test_every_out_indices_subset():
    model = ConvMLP(arch='s').eval()
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        full = model(x)
    for r in range(1, 5):
        for subset in itertools.combinations(range(4), r):
            model.out_indices = model._parse_out_indices(subset)
            with torch.no_grad():
                outs = model(x)
            assert len(outs) == len(subset)
            for out, i in zip(outs, subset):
                torch.testing.assert_close(out, full[i], rtol=0, atol=0)


def test_negative_and_int_out_indices():
    model = ConvMLP(arch='s', out_indices=(-1, -4))
    assert model.out_indices == [3, 0] and model.out_channels == [512, 64]
    assert ConvMLP(arch='s', out_indices=2).out_channels == [256]


@pytest.mark.parametrize('frozen', [-1, 0, 1, 2, 3, 4])
def test_frozen_stages(frozen):
    model = ConvMLP(arch='s', frozen_stages=frozen)
    model.train()
    parts = [model.tokenizer, model.conv_stages, *model.stages]
    for i, part in enumerate(parts):
        is_frozen = i <= frozen
        assert all(p.requires_grad != is_frozen for p in part.parameters()), i
        assert all(m.training != is_frozen for m in part.modules()), i
    if frozen >= 0:
        loss = sum(o.sum() for o in model(torch.rand(1, 3, 64, 64, requires_grad=True)))
        loss.backward()
        assert all(p.grad is None for p in parts[frozen].parameters())


def test_norm_eval_keeps_batchnorm_in_eval():
    model = ConvMLP(arch='s', norm_eval=True).train()
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(not bn.training for bn in bns)
    before = [bn.running_mean.clone() for bn in bns]
    model(torch.rand(2, 3, 64, 64))
    assert all(torch.equal(b, bn.running_mean) for b, bn in zip(before, bns))
    assert any(m.training for m in model.modules() if isinstance(m, nn.LayerNorm))
    assert all(bn.training for bn in ConvMLP(arch='s').train().modules() if isinstance(bn, nn.BatchNorm2d))


def test_with_cp_gives_same_outputs_and_gradients():
    plain = ConvMLP(arch='s')
    ckpt = ConvMLP(arch='s', with_cp=True)
    ckpt.load_state_dict(plain.state_dict())
    x = torch.rand(2, 3, 64, 64)
    results = []
    for model in (plain, ckpt):
        model.train()
        torch.manual_seed(1)  # the same drop-path masks in both runs
        xi = x.clone().requires_grad_(True)
        outs = model(xi)
        sum((o * (k + 1)).sum() for k, o in enumerate(outs)).backward()
        results.append((outs, xi.grad, {n: p.grad for n, p in model.named_parameters()}))
    (o1, gx1, g1), (o2, gx2, g2) = results
    for a, b in zip(o1, o2):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(gx1, gx2)
    assert g1.keys() == g2.keys()
    for name in g1:
        torch.testing.assert_close(g1[name], g2[name], msg=name)


def test_drop_path_schedule():
    model = ConvMLP(arch='m')
    for stage, n in zip(model.stages, [3, 6, 3]):
        rates = [getattr(b.drop_path, 'drop_prob', 0.0) for b in stage.blocks]
        assert rates == pytest.approx(torch.linspace(0, 0.1, n).tolist())
        assert isinstance(stage.blocks[0].drop_path, nn.Identity)
    assert all(isinstance(b.drop_path, nn.Identity)
               for s in ConvMLP(arch='s', drop_path_rate=0.0).stages for b in s.blocks)


def test_drop_path_is_active_only_in_training():
    model = ConvMLP(arch='s', drop_path_rate=0.5, out_indices=-1)
    x = torch.rand(1, 3, 64, 64)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x)[0], model(x)[0])
        model.train()
        assert not torch.equal(model(x)[0], model(x)[0])


def test_custom_arch_dict_and_in_channels():
    arch = dict(blocks=[1, 1, 1], dims=[32, 48, 64], mlp_ratios=[1, 2, 1], channels=16, n_conv_blocks=1)
    model = ConvMLP(arch=arch, in_channels=1).eval()
    outs = model(torch.rand(1, 1, 40, 40))
    assert model.out_channels == [16, 32, 48, 64]
    assert [o.shape[1] for o in outs] == [16, 32, 48, 64]


def test_final_norm_applies_layernorm_to_last_level():
    model = ConvMLP(arch='s', final_norm=True, out_indices=(2, 3)).eval()
    model.norm.weight.data.fill_(2.0)
    model.norm.bias.data.fill_(0.5)
    with torch.no_grad():
        l2, l3 = model(torch.rand(1, 3, 64, 64))
    # LayerNorm over channels at each position, then the affine: mean 0.5 and std 2 per position.
    per_pos = l3.permute(0, 2, 3, 1)
    torch.testing.assert_close(per_pos.mean(-1), torch.full(per_pos.shape[:-1], 0.5), atol=1e-4, rtol=0)
    torch.testing.assert_close(per_pos.std(-1, unbiased=False), torch.full(per_pos.shape[:-1], 2.0),
                               atol=1e-2, rtol=0)
    assert l2.shape[1] == 256


@pytest.mark.parametrize('kwargs, words', [
    (dict(arch='xl'), ["'xl'", "'s'", "'m'", "'l'"]),
    (dict(arch=dict(blocks=[2], dims=[64])), ['mlp_ratios', 'channels', 'n_conv_blocks']),
    (dict(arch=dict(blocks=[2, 2], dims=[64, 64, 64], mlp_ratios=[1, 1], channels=8, n_conv_blocks=1)),
     ["'dims': 3", "'blocks': 2"]),
    (dict(arch=dict(blocks=[2], dims=[8], mlp_ratios=[1], channels=8, n_conv_blocks=1, depth=3)), ["'depth'"]),
    (dict(out_indices=(0, 4)), ['4', '0..3']),
    (dict(out_indices=(-5,)), ['-5', '0..3']),
    (dict(frozen_stages=5), ['5', '[-1, 4]']),
    (dict(frozen_stages=-2), ['-2', '[-1, 4]']),
    (dict(depths=[1, 2]), ["'depths'", "'arch'", "'out_indices'", "'with_cp'"]),
    (dict(drop_path_rate=1.5), ['1.5', '[0, 1)']),
])
def test_bad_arguments_fail_fast_with_clear_message(kwargs, words):
    with pytest.raises((ValueError, TypeError)) as info:
        ConvMLP(**kwargs)
    for word in words:
        assert word in str(info.value), (word, str(info.value))
