"""The fast path (channels-last memory, the inference form folded on the fly in eval mode, the deployed
structure) gives the plain path's results, and the benchmark tool prints every column. No timing is asserted
here: speed is for tools/analysis_tools/benchmark.py."""
import pytest
import torch
from mmcv.cnn import fuse_conv_bn

from convmlp_mm import ConvMLP
from convmlp_mm.models import kernels
from convmlp_mm.models.fused import ConvReLU, FoldError, ResidualChannelMLP
from convmlp_mm.utils.benchmark import parse_target

from ..conftest import official_file, official_state_dict, run_tool

pytestmark = pytest.mark.matrix
TINY = dict(blocks=[1, 1, 1], dims=[16, 32, 64], mlp_ratios=[2, 2, 2], channels=8, n_conv_blocks=1)


def _pair(arch='s', **kwargs):
    """The same weights (official-format, with non-trivial norm statistics) in a plain model (NCHW, no
    inference form: the reference) and a model with the defaults."""
    state = {k: v for k, v in official_state_dict(arch).items() if not k.startswith('head.')}
    plain = ConvMLP(arch=arch, channels_last=False, fast_inference=False, final_norm=True, **kwargs)
    fast = ConvMLP(arch=arch, final_norm=True, **kwargs)
    plain.load_state_dict(state)
    fast.load_state_dict(state)
    return plain, fast


def _fused_kernel_calls(model, x):
    """The outputs of ``model(x)`` and how many fused oneDNN linear and conv kernels it ran."""
    with torch.profiler.profile() as prof:
        outputs = model(x)
    names = [event.name for event in prof.events()]
    return outputs, names.count('mkldnn::_linear_pointwise'), names.count('mkldnn::_convolution_pointwise'), names


def _close(got, want, tolerance=1e-4):
    return all(g.shape == w.shape and (g - w).abs().max() <= tolerance for g, w in zip(got, want))


@pytest.mark.parametrize('arch,size', [('s', (224, 224)), ('l', (96, 160)), ('s', (200, 333))])
def test_channels_last_folded_and_deployed_equal_plain_in_eval(arch, size):
    plain, fast = _pair(arch)
    plain.eval()
    fast.eval()
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        expected = plain(x)
        folded = fast(x)
        fast.fast_inference = False
        channels_last = fast(x)
        deployed = fast.switch_to_deploy()(x)
    assert all(t.is_contiguous() for t in expected)
    assert _close(folded, expected) and _close(channels_last, expected) and _close(deployed, expected)


@pytest.mark.skipif(not kernels.onednn_ops()[0], reason='this torch build has no oneDNN linear kernels')
def test_fused_kernels_run_only_in_cpu_inference():
    plain, fast = _pair()
    plain.eval()
    fast.eval()
    mlps = 2 * sum(len(stage.blocks) for stage in fast.stages)  # two channel MLPs per block, two matmuls each
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        want = plain(x)
        got, linear, _, _ = _fused_kernel_calls(fast, x)  # folded on the fly
        assert linear == 2 * mlps and _close(got, want)
        got, linear, _, _ = _fused_kernel_calls(fast.switch_to_deploy(), x)
        assert linear == 2 * mlps and _close(got, want)
        nchw = _pair()[1]
        nchw.channels_last = False  # the NCHW path hands the blocks non-contiguous token views
        assert _close(nchw.eval().switch_to_deploy()(x), want)
    _, linear, conv, _ = _fused_kernel_calls(fast, x)  # with autograd on (as when tracing for an export)
    assert linear == conv == 0
    with torch.no_grad():
        _, linear, conv, _ = _fused_kernel_calls(_pair()[1].train(), x)  # and in training mode (drop path)
    assert linear == conv == 0


@pytest.mark.skipif(not kernels.onednn_ops()[1], reason='this torch build has no oneDNN fused convolutions')
@pytest.mark.parametrize('deploy', [False, True], ids=['folded', 'deployed'])
def test_conv_layers_apply_the_relu_inside_the_conv_kernel(deploy):
    plain, fast = _pair()
    plain.eval()
    fast.eval()
    if deploy:
        fast.switch_to_deploy()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        got, _, conv, names = _fused_kernel_calls(fast, x)
        want = plain(x)
    # three conv-ReLU layers in the tokenizer and three in each bottleneck of the conv stage
    assert conv == 3 + 3 * fast.arch['n_conv_blocks']
    assert not {'aten::relu', 'aten::relu_', 'aten::clamp_min_', 'aten::batch_norm'} & set(names)
    assert _close(got, want)


@pytest.mark.skipif(not (kernels.onednn_ops()[1] and kernels.nnpack_ready()), reason='no NNPACK or oneDNN convs')
@pytest.mark.parametrize('deploy', [False, True], ids=['folded', 'deployed'])
def test_conv_stage_on_large_maps_runs_winograd_convolutions(deploy, monkeypatch):
    """From a conv-stage map of WINOGRAD_MIN_AREA (here 64x64, a 256x256 image), fp32 CPU inference runs the
    conv stage in NCHW memory with its 3x3 convs through NNPACK, one image at a time, with the plain path's
    results; below it, and in bf16, oneDNN's convs as before. (On every CPU: which CPUs take the path is
    test_winograd_runs_where_avx512_is_no_wider_than_avx2's.)"""
    monkeypatch.setattr(kernels, 'winograd_pays', lambda: True)
    plain, fast = _pair()
    plain.eval()
    fast.eval()
    if deploy:
        fast.switch_to_deploy()
    blocks = fast.arch['n_conv_blocks']
    x = torch.randn(2, 3, 256, 256)
    with torch.no_grad():
        want = plain(x)
        got, _, conv, names = _fused_kernel_calls(fast, x)
        assert names.count('aten::_nnpack_spatial_convolution') == 2 * blocks  # per image
        assert conv == 3 + 2 * blocks  # the tokenizer's and the 1x1 convs keep the ReLU inside
        assert _close(got, want)
        assert all(level.is_contiguous() for level in got)
        small = torch.randn(1, 3, 248, 256)  # a 62x64 map
        _, _, conv, names = _fused_kernel_calls(fast, small)
        assert 'aten::_nnpack_spatial_convolution' not in names and conv == 3 + 3 * blocks
        with torch.autocast('cpu', dtype=torch.bfloat16):
            _, _, conv, names = _fused_kernel_calls(fast, x)
        # bf16: oneDNN's bf16 convs where it has them, else the plain ops
        assert 'aten::_nnpack_spatial_convolution' not in names
        assert conv == (3 + 3 * blocks if kernels.onednn_ops()[2] else 0)


def _cpuinfo(vendor, family, flags):
    return f'processor\t: 0\nvendor_id\t: {vendor}\ncpu family\t: {family}\nflags\t\t: fpu sse2 {flags}\n'


def test_winograd_runs_where_avx512_is_no_wider_than_avx2():
    assert kernels.winograd_pays_on(_cpuinfo('AuthenticAMD', 25, 'avx2 fma avx512f avx512_bf16'))  # Zen 4
    assert kernels.winograd_pays_on(_cpuinfo('AuthenticAMD', 23, 'avx2 fma'))  # Zen 2: no AVX-512
    assert kernels.winograd_pays_on(_cpuinfo('GenuineIntel', 6, 'avx2 fma'))
    assert not kernels.winograd_pays_on(_cpuinfo('AuthenticAMD', 26, 'avx2 fma avx512f'))  # Zen 5
    assert not kernels.winograd_pays_on(_cpuinfo('GenuineIntel', 6, 'avx2 fma avx512f amx_bf16'))
    assert not kernels.winograd_pays_on(_cpuinfo('GenuineIntel', 6, 'sse4_2'))  # NNPACK's kernels need AVX2
    assert not kernels.winograd_pays_on('')


def test_deploy_installs_named_fused_modules():
    _, fast = _pair()
    fast.eval()
    before = sum(p.numel() for p in fast.parameters())
    fast.switch_to_deploy()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
    conv_parts = [*fast.tokenizer.modules(), *fast.conv_stages.modules()]
    assert not any(isinstance(m, (torch.nn.Identity, torch.nn.ReLU)) for m in conv_parts)  # no placeholders
    assert sum(isinstance(m, ConvReLU) for m in fast.modules()) == 3 + 3 * fast.arch['n_conv_blocks']
    block = fast.stages[0].blocks[0]
    assert isinstance(block.fused_mlp1, ResidualChannelMLP) and block.fused_mlp1.norm.weight is None
    assert not hasattr(block, 'norm1') and not hasattr(fast.tokenizer, 'block')
    assert block.connect_norm.weight is not None  # kept: the zero-padded conv after it sees no bias
    assert sum(p.numel() for p in fast.parameters()) < before
    assert fast.switch_to_deploy() is fast  # a second call changes nothing


def test_switch_to_deploy_in_training_mode_folds_the_running_statistics():
    """mmdeploy's task processors call ``model.backbone.switch_to_deploy()`` before ``model.eval()``: the mode
    is left as it was, and the deployed model then gives the trained model's eval-mode outputs."""
    plain, fast = _pair()
    assert fast.training and fast.switch_to_deploy() is fast and fast.training and fast.deploy
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        want, got = plain.eval()(x), fast.eval()(x)
    assert _close(got, want)


def test_deploy_constructor_builds_what_switch_to_deploy_makes():
    plain, fast = _pair()
    deployed = fast.eval().switch_to_deploy().state_dict()
    built = ConvMLP(final_norm=True, deploy=True)
    assert {k: v.shape for k, v in built.state_dict().items()} == {k: v.shape for k, v in deployed.items()}
    built.load_state_dict(deployed)  # strict
    # loaded into the layout switch_to_deploy stores: channels-last, not reordered in every call
    assert all(m.weight.is_contiguous(memory_format=torch.channels_last) for m in built.modules()
               if isinstance(m, ConvReLU))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert _close(built.eval()(x), plain.eval()(x))
    with pytest.raises(RuntimeError, match='Missing key'):
        built.load_state_dict(plain.state_dict())  # a training-structure checkpoint does not load silently


def test_norms_that_do_not_fold():
    gn = dict(type='GN', num_groups=4)
    with pytest.raises(ValueError, match="norm_cfg.*'GN'.*'BN' or 'SyncBN'"):
        ConvMLP(norm_cfg=gn, deploy=True)
    model = ConvMLP(arch=TINY, norm_cfg=gn).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        folded = model(x)  # the GroupNorms run as built, the rest in the inference form
        model.fast_inference = False
        assert _close(folded, model(x))
        with torch.autocast('cpu', dtype=torch.bfloat16):
            model.fast_inference = True
            assert all(level.dtype == torch.bfloat16 for level in model(x))  # plain autocast
    with pytest.raises(FoldError, match="GroupNorm.*'BN' or 'SyncBN'"):
        model.switch_to_deploy()


def test_mmcv_fuse_conv_bn_before_inference():
    """mmcv's fuse_conv_bn (mmdet's benchmark.py --fuse-conv-bn) folds the BatchNorms and leaves Identity
    modules: the inference form and switch_to_deploy take those too."""
    plain, fast = _pair()
    fuse_conv_bn(fast.eval())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        want = plain.eval()(x)
        assert _close(fast(x), want)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            assert all(level.dtype == torch.bfloat16 for level in fast(x))
        assert _close(fast.switch_to_deploy()(x), want)


def test_deploy_after_loading_an_official_checkpoint(tmp_path):
    path = tmp_path / 'convmlp_s_imagenet.pth'
    official_file('s', path)
    reference = ConvMLP(channels_last=False, fast_inference=False, final_norm=True,
                        init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    reference.init_weights()
    model = ConvMLP(final_norm=True, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    reference.eval()
    model.eval().switch_to_deploy()
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        assert _close(model(x), reference(x))


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
                      'held memory (MB)', '% of matmul rate', 'speed vs resnet18']
    rows = {row.split('|')[1].strip(): [c.strip() for c in row.strip('|').split('|')] for row in lines[2:]}
    assert set(rows) == {'convmlp-s:plain', 'convmlp-s:fast', 'resnet18'}
    assert rows['resnet18'][-1] == '1.00x'
    assert rows['convmlp-s:plain'][1] == '8.51M'  # the backbone alone, without the classifier's norm/head
    for cells in rows.values():
        assert len(cells) == len(header) and all(cells)
        assert float(cells[5]) > 0 and float(cells[7]) >= 0 and cells[8].endswith('% (fp32)')
    assert 'GFLOP/s' in proc.stdout and 'glibc keeps freed memory for reuse' in proc.stdout


def test_benchmark_tool_names_the_valid_choices_for_a_bad_target():
    proc = run_tool('analysis_tools/benchmark.py', 'convmlp-xl', check=False)
    assert proc.returncode != 0
    assert "'convmlp-xl'" in proc.stderr and 'resnet50' in proc.stderr
    with pytest.raises(ValueError, match="'turbo'.*plain"):
        parse_target('convmlp-s:turbo')
