"""The fast path (channels-last memory, switch_to_deploy fusion) gives the plain path's results, and the
benchmark tool prints every column. No timing is asserted here: speed is for tools/analysis_tools/benchmark.py."""
import pytest
import torch

from convmlp_mm import ConvMLP
from convmlp_mm.models import kernels
from convmlp_mm.models.backbones import convmlp as convmlp_module
from convmlp_mm.utils.benchmark import parse_target

from .conftest import official_file, official_state_dict, run_tool

pytestmark = pytest.mark.matrix


def _pair(arch='s', **kwargs):
    """The same weights (official-format, with non-trivial norm statistics) in a plain and a fast model."""
    state = {k: v for k, v in official_state_dict(arch).items() if not k.startswith('head.')}
    plain = ConvMLP(arch=arch, channels_last=False, final_norm=True, **kwargs)
    fast = ConvMLP(arch=arch, channels_last=True, final_norm=True, **kwargs)
    plain.load_state_dict(state)
    fast.load_state_dict(state)
    return plain, fast


@pytest.mark.parametrize('arch,size', [('s', (224, 224)), ('l', (96, 160)), ('s', (200, 333))])
def test_channels_last_and_deploy_equal_plain_in_eval(arch, size):
    plain, fast = _pair(arch)
    plain.eval()
    fast.eval()
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        expected = plain(x)
        channels_last = fast(x)
        fast.switch_to_deploy()
        deployed = fast(x)
    assert all(t.is_contiguous() for t in expected)
    for want, got_cl, got_dep in zip(expected, channels_last, deployed):
        assert got_cl.shape == want.shape == got_dep.shape
        assert (got_cl - want).abs().max() <= 1e-4
        assert (got_dep - want).abs().max() <= 1e-4


@pytest.mark.skipif(not kernels.onednn_ops()[0], reason='this torch build has no oneDNN linear kernels')
def test_deployed_blocks_use_the_fused_kernels_only_for_cpu_inference(monkeypatch):
    plain, fast = _pair()
    plain.eval().fast_inference = False  # the reference: no fused copy of its own (whose calls would count)
    fast.eval().switch_to_deploy()
    calls = []
    fused = convmlp_module.fused_mlp_residual
    monkeypatch.setattr(convmlp_module, 'fused_mlp_residual', lambda *args: calls.append(1) or fused(*args))
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        got, want = fast(x), plain(x)
    assert len(calls) == 2 * sum(len(stage.blocks) for stage in fast.stages)  # both MLPs of every block
    assert all((g - w).abs().max() <= 1e-4 for g, w in zip(got, want))
    nchw, _ = _pair()  # the NCHW path hands the blocks non-contiguous token views
    with torch.no_grad():
        got = nchw.eval().switch_to_deploy()(x)
    assert all((g - w).abs().max() <= 1e-4 for g, w in zip(got, want))
    calls.clear()
    fast(x)  # with autograd on (as when tracing for an export), the plain ops run
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        fast(x)  # and under autocast, which picks its own precision
    with torch.no_grad():
        fast.train()(x)  # and in training mode, where drop path applies
    assert not calls


@pytest.mark.skipif(not kernels.onednn_ops()[1], reason='this torch build has no oneDNN fused convolutions')
def test_deployed_conv_layers_apply_the_relu_inside_the_conv_kernel():
    plain, fast = _pair()
    plain.eval().fast_inference = False
    fast.eval().switch_to_deploy()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad(), torch.profiler.profile() as prof:
        got = fast(x)
    names = [event.name for event in prof.events()]
    # three conv-ReLU layers in the tokenizer and three in each bottleneck of the conv stage
    assert names.count('mkldnn::_convolution_pointwise') == 3 + 3 * len(fast.conv_stages.conv_blocks)
    assert not {'aten::relu', 'aten::relu_', 'aten::clamp_min_'} & set(names)
    with torch.no_grad():
        want = plain(x)
    assert all((g - w).abs().max() <= 1e-4 for g, w in zip(got, want))


def test_deploy_folds_batchnorm_and_layernorm_affines():
    _, fast = _pair()
    fast.eval()
    before = sum(p.numel() for p in fast.parameters())
    fast.switch_to_deploy()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
    block = fast.stages[0].blocks[0]
    assert block.norm1.weight is None and block.norm2.weight is None
    assert block.connect_norm.weight is not None  # kept: the zero-padded conv after it sees no bias
    assert sum(p.numel() for p in fast.parameters()) < before
    assert fast.switch_to_deploy() is fast  # a second call changes nothing


def test_deploy_in_training_mode_is_refused():
    model = ConvMLP()
    with pytest.raises(RuntimeError, match='eval'):
        model.switch_to_deploy()


def test_deploy_after_loading_an_official_checkpoint(tmp_path):
    path = tmp_path / 'convmlp_s_imagenet.pth'
    official_file('s', path)
    reference = ConvMLP(channels_last=False, final_norm=True,
                        init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    reference.init_weights()
    model = ConvMLP(final_norm=True, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    reference.eval()
    model.eval().switch_to_deploy()
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        for want, got in zip(reference(x), model(x)):
            assert (got - want).abs().max() <= 1e-4


@pytest.mark.parametrize('with_cp', [False, True])
def test_channels_last_training_gives_the_same_gradients(with_cp):
    """Gradients of the channels-last (default) path against the plain path run in float64. The reference is
    float64 because the plain path's own fp32 gradients of the conv parts are off by up to ~6% on some CPUs
    (seen on AMD Zen 5 with torch 2.14.1; every conv and BatchNorm of it is exact on its own)."""
    reference, fast = _pair(drop_path_rate=0.0, with_cp=with_cp)
    reference.double()
    x = torch.randn(2, 3, 96, 96)
    grads = []
    for model, inputs in ((reference, x.double()), (fast, x)):
        model.train()
        sum(out.pow(2).mean() for out in model(inputs)).backward()
        grads.append({name: p.grad.double() for name, p in model.named_parameters()})
    assert grads[0].keys() == grads[1].keys()
    for name, want in grads[0].items():
        error = (grads[1][name] - want).abs().max() / want.abs().max().clamp_min(1e-12)
        assert error <= 1e-3, (name, float(error))


def test_benchmark_tool_prints_every_column():
    proc = run_tool('analysis_tools/benchmark.py', 'convmlp-s:plain', 'convmlp-s:fast', 'resnet18', '--size', '64',
                    '--batch', '1', '--warmup', '0', '--repeats', '1', '--baseline', 'resnet18')
    lines = [line for line in proc.stdout.splitlines() if line.startswith('|')]
    header = [c.strip() for c in lines[0].strip('|').split('|')]
    assert header == ['model', 'params', 'GMACs', 'batch', 'latency (ms)', 'images/s', 'peak memory (MB)',
                      '% of matmul rate', 'speed vs resnet18']
    rows = {row.split('|')[1].strip(): [c.strip() for c in row.strip('|').split('|')] for row in lines[2:]}
    assert set(rows) == {'convmlp-s:plain', 'convmlp-s:fast', 'resnet18'}
    assert rows['resnet18'][-1] == '1.00x'
    assert rows['convmlp-s:plain'][1] == '8.51M'  # the backbone alone, without the classifier's norm/head
    for cells in rows.values():
        assert len(cells) == len(header) and all(cells)
        assert float(cells[5]) > 0 and cells[7].endswith('% (fp32)')
    assert 'GFLOP/s' in proc.stdout


def test_benchmark_tool_names_the_valid_choices_for_a_bad_target():
    proc = run_tool('analysis_tools/benchmark.py', 'convmlp-xl', check=False)
    assert proc.returncode != 0
    assert "'convmlp-xl'" in proc.stderr and 'resnet50' in proc.stderr
    with pytest.raises(ValueError, match="'turbo'.*plain"):
        parse_target('convmlp-s:turbo')
