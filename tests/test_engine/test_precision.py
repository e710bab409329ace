"""Speed where users run, checked for correctness (no timings here: those are tools/analysis_tools/benchmark.py's and
tools/analysis_tools/benchmark_e2e.py's): the backbone's inference form in eval mode (``fast_inference``), bf16
through it and through whole models (``mixed_precision``, ``AutocastTestLoop``, ``AutocastOptimWrapper``),
and the refusals on devices without native bf16/fp16.

Where this machine has no native bf16 the tests below still run the bf16 code (torch emulates it, slowly,
so they use tiny models); ``native_bf16`` pretends the support check passed.
"""
import copy
import re
from unittest import mock

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from convmlp_mm import ConvMLP
from convmlp_mm.apis import build_from_config
from convmlp_mm.engine import AutocastOptimWrapper, UnsupportedPrecisionError, check_precision, mixed_precision
from convmlp_mm.engine import precision as precision_module
from convmlp_mm.engine.precision import inference_weights
from convmlp_mm.models import kernels
from convmlp_mm.utils.benchmark import run as run_benchmark

from ..conftest import ROOT, official_state_dict, random_checkpoint, run_tool

TINY = dict(blocks=[1, 1, 1], dims=[16, 32, 64], mlp_ratios=[2, 2, 2], channels=8, n_conv_blocks=1)
TOY_CONFIGS = {
    'retinanet': 'configs/detection/toy/retinanet_convmlp_s_fpn_toy.py',
    'mask_rcnn': 'configs/detection/toy/mask_rcnn_convmlp_s_fpn_toy.py',
    'semantic_fpn': 'configs/segmentation/toy/fpn_convmlp_s_toy.py',
    'classifier': 'configs/classification/toy/convmlp_s_toy.py',
}


@pytest.fixture
def native_bf16():
    with mock.patch.object(precision_module, 'cpu_has_bf16_instructions', lambda: True):
        yield


@pytest.fixture
def no_native_bf16():
    with mock.patch.object(precision_module, 'cpu_has_bf16_instructions', lambda: False):
        yield


def _backbone(arch='s', **kwargs):
    """A backbone with official-format weights whose norms have non-trivial statistics."""
    model = ConvMLP(arch=arch, final_norm=True, drop_path_rate=0.0, **kwargs)
    if arch == 's':
        model.load_state_dict({k: v for k, v in official_state_dict('s').items() if not k.startswith('head.')})
    return model


def _max_diff(want, got):
    return max(float((w - g.float()).abs().max()) for w, g in zip(want, got))


def _relative(want, got):
    return [float((w - g.float()).norm() / w.norm()) for w, g in zip(want, got)]


def _fused_kernels(model, x):
    """The outputs of ``model(x)`` and the number of fused oneDNN kernels it ran."""
    with torch.profiler.profile() as prof:
        outputs = model(x)
    return outputs, sum(event.name.startswith('mkldnn::_') and event.name.endswith('_pointwise')
                        for event in prof.events())


def _state(model):
    """Everything a module instance holds besides its submodules, parameters and buffers."""
    return {name: (type(value), value if isinstance(value, (bool, int, float, str)) else None)
            for name, value in vars(model).items() if not name.startswith('_')}


def test_fast_inference_folds_on_the_fly_and_equals_the_plain_path():
    model = _backbone().eval()
    x = torch.randn(2, 3, 96, 128)
    before = _state(model), set(model.state_dict()), list(model._modules)
    with torch.no_grad():
        model.fast_inference = False
        expected, plain_kernels = _fused_kernels(model, x)
        model.fast_inference = True
        fast, fast_kernels = _fused_kernels(model, x)
    assert plain_kernels == 0 and fast_kernels > 0 or not kernels.onednn_ops()[0]
    assert _max_diff(expected, fast) <= 1e-4
    assert all(f.shape == e.shape for f, e in zip(fast, expected))
    # Nothing is kept: the module holds what it held before (no copy, no cache), its state dict is unchanged.
    assert (_state(model), set(model.state_dict()), list(model._modules)) == before


def test_fast_inference_follows_weight_changes():
    model = _backbone().eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        model(x)
        new_weights = {k: v * 1.5 if v.is_floating_point() else v for k, v in model.state_dict().items()}
        model.load_state_dict(new_weights)  # in eval mode: only the version counters tell
        after_load = model(x)
        # What mmengine's EMAHook does: write through .data (no version change), then call eval().
        for p in model.parameters():
            p.data.mul_(0.5)
        model.eval()
        after_swap = model(x)
        model.fast_inference = False
        assert max(_relative(model(x), after_swap)) <= 1e-5
        model.load_state_dict(new_weights)
        assert max(_relative(model(x), after_load)) <= 1e-5


def test_the_inference_form_is_left_out_of_training_gradients_and_tracing():
    model = _backbone().eval()
    x = torch.randn(1, 3, 64, 64)
    outputs, fused = _fused_kernels(model, x)  # eval mode with gradients: a fine-tuning user's forward
    sum(o.sum() for o in outputs).backward()
    assert model.tokenizer.block[0].weight.grad is not None and model.tokenizer.block[1].weight.grad is not None
    assert fused == 0
    with torch.no_grad():
        assert _fused_kernels(model.train(), x)[1] == 0
        graph = torch.jit.trace(model.eval(), x, check_trace=False).inlined_graph
    # tracers and exporters see the plain ops: the BatchNorms as they are, no private oneDNN op
    assert 'aten::batch_norm' in str(graph) and 'mkldnn' not in str(graph)


def test_bf16_inference_stays_within_bf16_rounding():
    """Under bf16 autocast the backbone runs in bf16 throughout (fused oneDNN kernels where oneDNN has bf16).
    Its error against fp32 is that of plain autocast: measured 0.4% at level 0 to 2.4% at level 3 (relative
    L2)."""
    model = _backbone().eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        model.fast_inference = False
        expected = model(x)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            autocast_plain = model(x)
            model.fast_inference = True
            fused = model(x)
            deployed = copy.deepcopy(model).switch_to_deploy()(x)
    assert all(t.dtype == torch.bfloat16 for t in fused + deployed)
    assert all(p.dtype == torch.float32 for p in model.parameters())  # the weights are cast per call
    for plain_error, fused_error, deployed_error in zip(_relative(expected, autocast_plain),
                                                        _relative(expected, fused), _relative(expected, deployed)):
        assert fused_error <= 0.04 and fused_error <= 2 * plain_error + 0.005
        assert deployed_error <= 0.04 and deployed_error <= 2 * plain_error + 0.005


def test_inference_weights_are_cast_once_and_put_back_unchanged():
    model = _backbone().eval()
    before = {name: (p.data_ptr(), p.detach().clone()) for name, p in model.named_parameters()}
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
        with inference_weights(model, 'bfloat16'):
            assert all(p.dtype == torch.bfloat16 for p in model.parameters())
            assert model.tokenizer.block[1].running_var.dtype == torch.float32  # the statistics stay fp32
            with torch.autocast('cpu', dtype=torch.bfloat16):
                held = model(x)
    # the very fp32 tensors, unchanged
    assert all((p.data_ptr(), p.dtype) == (before[name][0], torch.float32) and torch.equal(p, before[name][1])
               for name, p in model.named_parameters())
    assert all(t.dtype == torch.bfloat16 for t in held) and max(_relative(expected, held)) <= 0.04
    with inference_weights(model.train(), 'bfloat16'):  # training: nothing is touched
        assert all(p.dtype == torch.float32 for p in model.parameters())


def test_bf16_training_gradients_follow_fp32():
    """Training under bf16 autocast (what --amp does on CPUs): outputs and gradients in the direction of
    fp32's (cosine similarity of all gradients), the parameters and their gradients fp32."""
    model = ConvMLP(arch=TINY, drop_path_rate=0.0).train()
    x = torch.randn(2, 3, 32, 32)
    grads = []
    for enabled in (False, True):
        model.zero_grad()
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=enabled):
            outputs = model(x)
        sum(o.float().pow(2).mean() for o in outputs).backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    assert all(p.grad.dtype == torch.float32 for p in model.parameters())
    assert float(torch.nn.functional.cosine_similarity(grads[0], grads[1], dim=0)) >= 0.99


@pytest.mark.parametrize('name', sorted(TOY_CONFIGS))
def test_whole_models_predict_in_bf16_with_fp32_post_processing(name, native_bf16):
    """Each task's toy model (tiny backbone) predicts under mixed_precision: mmcv's fp32-only ops (NMS,
    RoIAlign) get fp32, the predictions come out fp32, and the library's evaluator takes them."""
    cfg = Config.fromfile(ROOT / TOY_CONFIGS[name])
    cfg.model.backbone.arch = TINY
    if name != 'classifier':
        cfg.model.neck.in_channels = [8, 16, 32, 64]
    else:
        cfg.model.head.in_channels = 64
    model = build_from_config(cfg).eval()
    scope = cfg.default_scope
    with DefaultScope.overwrite_default_scope(scope):
        inputs = torch.rand(1, 3, 64, 96) * 255
        sample = _data_sample(scope, (64, 96))
        data = model.data_preprocessor(dict(inputs=[inputs[0]], data_samples=[sample]), False)
        with torch.no_grad(), mixed_precision(model):
            predictions = model(**data, mode='predict')
    floats = [t for t in _tensors(predictions[0]) if t.is_floating_point()]
    assert floats and all(t.dtype == torch.float32 for t in floats)


def _data_sample(scope, shape):
    meta = dict(img_shape=shape, ori_shape=shape, pad_shape=shape, scale_factor=(1.0, 1.0))
    if scope == 'mmdet':
        from mmdet.structures import DetDataSample
        return DetDataSample(metainfo=meta)
    if scope == 'mmseg':
        from mmseg.structures import SegDataSample
        return SegDataSample(metainfo=meta)
    from mmpretrain.structures import DataSample
    return DataSample(metainfo=meta)


def _tensors(element):
    for value in element.values():
        if isinstance(value, torch.Tensor):
            yield value
        elif hasattr(value, 'values'):
            yield from _tensors(value)


def test_autocast_optim_wrapper_trains_the_network_in_bf16(native_bf16):
    from mmengine.model import BaseModel

    class Net(BaseModel):
        def __init__(self):
            super().__init__()
            self.backbone = ConvMLP(arch=TINY, out_indices=-1, drop_path_rate=0.0)
            self.head = torch.nn.Linear(64, 3)
            self.seen = []

        def forward(self, inputs, labels, mode='loss'):
            self.seen.append(torch.is_autocast_enabled('cpu'))
            logits = self.head(self.backbone(inputs)[0].mean((2, 3)))
            self.seen.append(logits.dtype)  # the head's output, after mixed_precision's cast
            return dict(loss=torch.nn.functional.cross_entropy(logits, labels))

    model = Net()
    before = model.head.weight.detach().clone()
    wrapper = AutocastOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    losses = model.train_step(dict(inputs=torch.randn(2, 3, 32, 32), labels=torch.tensor([0, 2])), wrapper)
    assert model.seen == [True, torch.float32]
    assert torch.isfinite(losses['loss']) and not torch.equal(before, model.head.weight)
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_runner_test_in_bf16_with_the_autocast_test_loop(native_bf16, toy_cls, tmp_path):
    cfg = Config.fromfile(ROOT / TOY_CONFIGS['classifier'])
    cfg.model.backbone.arch = TINY
    cfg.model.head.in_channels = 64
    cfg.test_dataloader.dataset.data_root = str(toy_cls)
    cfg.test_cfg = dict(type='convmlp_mm.AutocastTestLoop', dtype='bfloat16')
    cfg.work_dir = str(tmp_path)
    from mmengine.runner import Runner
    runner = Runner.from_cfg(cfg)
    weights = {name: p.data_ptr() for name, p in runner.model.named_parameters()}
    metrics = runner.test()
    assert 0 <= metrics['accuracy/top1'] <= 100
    assert all(p.data_ptr() == weights[name] and p.dtype == torch.float32  # held in bf16, then put back
               for name, p in runner.model.named_parameters())


def test_unsupported_precision_is_refused_with_the_reason(no_native_bf16):
    with pytest.raises(UnsupportedPrecisionError, match=r'--bf16: bf16 is not available on this CPU: .*avx512_bf16'
                                                       r'.*amx_bf16.*Run without it, in fp32'):
        check_precision('cpu', torch.bfloat16, '--bf16')
    with pytest.raises(UnsupportedPrecisionError, match='fp16 runs natively on GPUs only'):
        check_precision('cpu', torch.float16, '--fp16')
    model = ConvMLP(arch=TINY)
    with pytest.raises(UnsupportedPrecisionError, match='mixed_precision: bf16'):
        with mixed_precision(model):
            pass
    with pytest.raises(UnsupportedPrecisionError, match="optim_wrapper.dtype='bfloat16'"):
        AutocastOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    with pytest.raises(UnsupportedPrecisionError, match='target convmlp-s:bf16, convmlp-s:inductor-bf16: bf16'):
        run_benchmark(['convmlp-s:fast', 'convmlp-s:bf16', 'convmlp-s:inductor-bf16'], (64, 64))
    with pytest.raises(ValueError, match=r"'half'.*'bf16', 'bfloat16', 'float16', 'fp16'"):
        precision_module.parse_dtype('half')


@pytest.mark.skipif(torch.cuda.is_available(), reason='fp16 is refused on CPUs only')
@pytest.mark.parametrize('tool', ['test.py --fp16', 'train.py --amp --amp-dtype float16', 'demo.py --fp16'])
def test_tools_refuse_fp16_on_a_cpu_in_one_line(tool, tmp_path):
    name, *flags = tool.split()
    config = str(ROOT / TOY_CONFIGS['retinanet'])
    args = {'test.py': [config, str(ROOT / 'README.md')], 'train.py': [config, '--work-dir', str(tmp_path)],
            'demo.py': [str(ROOT / 'README.md'), config, str(ROOT / 'README.md')]}[name]
    proc = run_tool(name, *args, *flags, check=False)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('error: --') and 'fp16 runs natively on GPUs only' in last and 'Traceback' not in proc.stderr
    assert not list(tmp_path.iterdir())  # nothing started, nothing written


@pytest.mark.e2e
def test_end_to_end_benchmark_prints_each_variant_with_its_metric(toy_cls, tmp_path):
    config = TOY_CONFIGS['classifier']
    weights = random_checkpoint(config, tmp_path / 'model.pth')
    proc = run_tool('analysis_tools/benchmark_e2e.py', str(ROOT / config), str(weights), '--cfg-options',
                    f'test_dataloader.dataset.data_root={toy_cls}', 'test_dataloader.batch_size=2',
                    '--variants', 'default', 'fast', 'deploy', 'bf16')
    rows = {cells[0]: cells for cells in ([c.strip() for c in line.strip('|').split('|')]
                                          for line in proc.stdout.splitlines() if line.startswith('| '))}
    assert rows['variant'] == ['variant', 'images/s', 'metric', 'speed vs default']
    assert rows['default'][3] == '1.00x' and float(rows['fast'][1]) > 0
    # The inference form and the deployed structure give the plain path's outputs to float rounding: the same metric.
    assert rows['default'][2] == rows['fast'][2] == rows['deploy'][2]
    assert re.fullmatch(r'accuracy/top1 \d+\.\d{4}', rows['fast'][2]) and float(rows['deploy'][1]) > 0
    bf16 = rows['bf16']
    assert bf16[2].startswith('accuracy/top1 ') or bf16[2].startswith('not run: --bf16: bf16 is not available')
