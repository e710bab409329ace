"""Measuring models side by side: parameters, MACs, latency, throughput, peak memory and the share of the
device's measured matrix-multiply rate. Used by ``tools/analysis_tools/benchmark.py`` and ``tools/misc/model_zoo.py``.

A *target* names what to measure:

- a backbone: ``convmlp-s``/``-m``/``-l`` or a peer from the installed libraries (``resnet18``,
  ``resnet50``, ``swin-t``, ``pvt-t``); all return their dense feature levels;
- a config file (``*.py``): classifiers run to logits, detectors and segmentors run backbone + neck
  (``extract_feat``), the part that depends on the backbone and needs no annotations.

A target can carry a variant after a colon: ``:plain`` (as built; for ConvMLP its NCHW path, the
straightforward implementation), ``:fast`` (channels-last weights, ConvMLP's default channels-last path, and
for inference ``switch_to_deploy()`` and mmcv's conv-BN fusion), ``:bf16`` (channels-last and conv-BN
fusion as ``:fast``, under bf16 autocast, where ConvMLP's ``fast_inference`` runs the backbone in bf16, its
weights held in bf16 as ``tools/test.py --bf16`` holds them; its share of the matmul rate is of the bf16
matmul rate), ``:compile`` (``:fast`` under ``torch.compile``)
and ``:cp`` (gradient checkpointing, ``with_cp=True``). Without a variant the model runs as built.

The runtimes a user would pick instead (``convmlp_mm/utils/runtimes.py``), for inference on the CPU, on the same
weights, from the plain model (for ConvMLP its NCHW path): ``:ort`` (onnxruntime, fp32), ``:openvino`` and
``:openvino-bf16`` (OpenVINO with an fp32 or bf16 inference precision), ``:inductor`` and ``:inductor-bf16``
(``torch.compile`` with weight freezing, the latter under bf16 autocast).
"""
import contextlib
import ctypes
import json
import os
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import fuse_conv_bn

from ..apis import build_from_config
from ..deploy.wrappers import TensorNetwork
from ..models.kernels import matmul_gflops
from .allocator import ENVIRONMENT, retain_freed_memory

PEERS = {
    'convmlp-s': dict(type='convmlp_mm.ConvMLP', arch='s'),
    'convmlp-m': dict(type='convmlp_mm.ConvMLP', arch='m'),
    'convmlp-l': dict(type='convmlp_mm.ConvMLP', arch='l'),
    'resnet18': dict(type='mmdet.ResNet', depth=18),
    'resnet50': dict(type='mmdet.ResNet', depth=50),
    'swin-t': dict(type='mmdet.SwinTransformer', embed_dims=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24)),
    'pvt-t': dict(type='mmdet.PyramidVisionTransformer', num_layers=(2, 2, 2, 2)),
}
#: The variants another runtime runs, and the precision it is asked for.
RUNTIME_VARIANTS = {'ort': None, 'openvino': None, 'openvino-bf16': torch.bfloat16, 'inductor': None,
                    'inductor-bf16': torch.bfloat16}
VARIANTS = ('plain', 'fast', 'bf16', 'compile', 'cp') + tuple(RUNTIME_VARIANTS)
BF16_VARIANTS = ('bf16', 'openvino-bf16', 'inductor-bf16')
MODES = ('infer', 'train')


def _variant_args(variant: Optional[str], backbone_type: str) -> dict:
    if variant == 'cp':
        return dict(with_cp=True)
    if (variant == 'plain' or variant in RUNTIME_VARIANTS) and backbone_type.endswith('ConvMLP'):
        return dict(channels_last=False)
    return {}


@dataclass
class Measurement:
    """One target's figures. ``macs`` counts one image's forward pass (mmengine's analysis)."""

    name: str
    params: int
    macs: int
    batch: int
    latency_s: float  # median seconds per batch
    peak_mb: float  # peak memory of one step above the memory held before it
    held_mb: float  # memory the process still holds after two steps, above what it held before them
    matmul_fraction: float  # achieved MAC rate (x3 for a training step) / measured matmul rate in its dtype
    dtype: str = 'fp32'

    @property
    def images_per_s(self) -> float:
        return self.batch / self.latency_s


def parse_target(target: str) -> Tuple[str, Optional[str]]:
    """Split ``name[:variant]`` and check both parts, naming the valid choices."""
    name, _, variant = target.partition(':')
    if not name.endswith('.py') and name not in PEERS:
        raise ValueError(f'unknown benchmark target {name!r}; use a config file (*.py) or one of {sorted(PEERS)}')
    if name.endswith('.py') and not Path(name).is_file():
        raise FileNotFoundError(f'config file {name!r} does not exist')
    if variant and variant not in VARIANTS:
        raise ValueError(f'unknown variant {variant!r} in {target!r}; choose one of {list(VARIANTS)}')
    return name, variant or None


def build_target(target: str, mode: str = 'infer', device: str = 'cpu',
                 example: Optional[torch.Tensor] = None) -> nn.Module:
    """Build a target (random weights, no downloads) ready to run in ``mode`` on ``device``; another runtime's
    target is compiled for inputs shaped like ``example``."""
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import MODELS

    if mode not in MODES:
        raise ValueError(f'unknown mode {mode!r}; choose one of {list(MODES)}')
    name, variant = parse_target(target)
    if variant in RUNTIME_VARIANTS and (mode != 'infer' or not device.startswith('cpu') or example is None):
        raise ValueError(f'{target!r}: the :{variant} variant measures inference on the CPU for a given input '
                         f'(got mode {mode!r}, device {device!r})')
    if not name.startswith('convmlp'):
        # Only now: ConvMLP alone needs none of them (and mmdet needs mmcv's compiled ops).
        import mmdet.models  # noqa: F401  registers the peers and the detectors
        import mmpretrain.models  # noqa: F401
        import mmseg.models  # noqa: F401
    if name.endswith('.py'):
        from mmengine.config import Config
        cfg = Config.fromfile(name)
        model = build_from_config(cfg, **_variant_args(variant, cfg.model.backbone.type))
        model = TensorNetwork(revert_sync_batchnorm(model), 'logits' if hasattr(model, 'head') else 'features')
        backbone = model.model.backbone
    else:
        cfg = dict(PEERS[name], **_variant_args(variant, PEERS[name]['type']))
        model = backbone = MODELS.build(cfg)
        model.init_weights()
    model.to(device)
    model.train(mode == 'train')  # not chained: some backbones' train() returns None
    if variant in ('fast', 'bf16', 'compile'):
        # Channels-last weights make oneDNN/cuDNN pick NHWC kernels for every conv (ConvMLP converts its
        # input itself); for inference, BatchNorms are folded into convs (ConvMLP's deployed structure also
        # folds LayerNorm affines; under bf16 its inference form folds on the fly).
        model.to(memory_format=torch.channels_last)
        if mode == 'infer':
            if hasattr(backbone, 'switch_to_deploy') and variant != 'bf16':
                backbone.switch_to_deploy()
            fuse_conv_bn(model)
    if variant == 'compile':
        model = torch.compile(model)
    if variant in RUNTIME_VARIANTS:
        from .runtimes import build_runtime
        model = build_runtime(model, variant.split('-')[0], example, RUNTIME_VARIANTS[variant])
    return model


def count_macs(model: nn.Module, size: Tuple[int, int]) -> int:
    """Multiply-accumulates of one forward pass on a ``size`` (H, W) image, by mmengine's analysis."""
    from mmengine.analysis import FlopAnalyzer
    model = _eager_module(model)  # analyse the eager module behind torch.compile
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    with torch.no_grad():
        analyzer = FlopAnalyzer(model, (torch.randn(1, 3, *size, device=device),))
        analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        macs = analyzer.total()
    model.train(was_training)
    return int(macs)


def target_dtype(target: str) -> Optional[torch.dtype]:
    """The dtype a target computes in (bf16 for ``:bf16``, ``:openvino-bf16``, ``:inductor-bf16``), or None for
    fp32. Autocast to it (a no-op for onnxruntime and OpenVINO, which run their own precision)."""
    return torch.bfloat16 if parse_target(target)[1] in BF16_VARIANTS else None


def _synchronize(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def job_weights(model: nn.Module, target: str, mode: str) -> contextlib.AbstractContextManager:
    """What a bf16 inference job of ours holds for its length (``tools/test.py --bf16``, ``AutocastTestLoop``,
    ``mixed_precision``): for the ``:bf16`` variant, ConvMLP's weights in bf16
    (:func:`~convmlp_mm.engine.precision.inference_weights`), instead of a cast in every call."""
    from ..engine.precision import inference_weights
    if mode == 'infer' and parse_target(target)[1] == 'bf16':
        return inference_weights(model, torch.bfloat16)
    return contextlib.nullcontext()


def median_time(fn: Callable[[], object], device: str, warmup: int, repeats: int) -> float:
    """Median seconds of ``repeats`` calls after ``warmup`` untimed ones, synchronising CUDA around each."""
    for _ in range(warmup):
        fn()
    _synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def make_step(model: nn.Module, x: torch.Tensor, mode: str,
              dtype: Optional[torch.dtype] = None) -> Callable[[], None]:
    """One benchmark step on ``x``: a forward pass without grad (``infer``) or forward + backward (``train``),
    under autocast to ``dtype`` if given."""
    def autocast() -> torch.autocast:
        return torch.autocast(x.device.type, dtype=dtype, enabled=dtype is not None)

    if mode == 'infer':
        def infer() -> None:
            with torch.no_grad(), autocast():
                model(x)
        return infer

    grads: List[torch.Tensor] = []

    def train() -> None:
        with autocast():
            outputs = model(x)
        if not grads:
            # Fixed random output gradients in each output's own memory layout, as a neck or head would
            # send back. (The gradient of a mean has zero strides, which no real layer produces and which
            # pushes channels-last backward kernels onto slow mixed-layout paths.)
            grads.extend(torch.randn_like(out) for out in outputs)
        torch.autograd.backward(outputs, grads)
        model.zero_grad(set_to_none=True)
    return train


def _process_memory_mb(key: str) -> float:
    match = re.search(rf'^{key}:\s+(\d+) kB', Path('/proc/self/status').read_text(), re.M)
    return int(match.group(1)) / 1024


def peak_memory_mb(fn: Callable[[], None], device: str) -> float:
    """Peak memory of one call above what was held before it.

    CUDA: the caching allocator's peak. CPU: the process's peak resident size (``VmHWM``, reset through
    ``/proc/self/clear_refs``) over its size before the call. That is only the call's own memory when
    glibc unmaps freed blocks, as in the child processes of :func:`cpu_peak_memory_mb`.
    """
    if device.startswith('cuda'):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - before) / 2 ** 20
    ctypes.CDLL('libc.so.6').malloc_trim(0)
    Path('/proc/self/clear_refs').write_text('5')
    before = _process_memory_mb('VmRSS')
    fn()
    return _process_memory_mb('VmHWM') - before


def cpu_peak_memory_mb(target: str, size: Tuple[int, int], batch: int, mode: str) -> float:
    """One step's peak memory on the CPU, measured in a fresh process.

    By default glibc keeps freed large blocks in its heap (it raises its mmap threshold as they are freed),
    so a process's resident size depends on everything it did before. The child starts with a fixed
    threshold (``MALLOC_MMAP_THRESHOLD_``): every block over 128 KiB is mapped and unmapped on its own, and
    the resident size follows the tensors alive. Timings are not taken there, as that slows allocation.
    """
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_=str(128 * 1024))
    return _in_child('_child_peak', env, target, size, batch, mode)


def _in_child(function: str, env: Dict[str, str], target: str, size: Tuple[int, int], batch: int,
              mode: str) -> float:
    """What ``function`` of this module returns for the arguments in a fresh process with ``env`` and this
    process's thread count."""
    code = (f'import sys, json; from convmlp_mm.utils.benchmark import {function}; '
            f'print({function}(*json.loads(sys.argv[1])))')
    env = dict(env, OMP_NUM_THREADS=str(torch.get_num_threads()))
    proc = subprocess.run([sys.executable, '-c', code, json.dumps([target, list(size), batch, mode])],
                          env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f'measuring the memory of {target} failed:\n{proc.stderr[-2000:]}')
    return float(proc.stdout.strip().splitlines()[-1])


def _child_peak(target: str, size: List[int], batch: int, mode: str) -> float:
    x = torch.randn(batch, 3, *size)
    model = build_target(target, mode, 'cpu', example=x)
    step = make_step(model, x, mode, target_dtype(target))
    with job_weights(model, target, mode):
        step()  # the first call allocates lasting state (e.g. oneDNN's caches), not the step's memory
        return peak_memory_mb(step, 'cpu')


def cpu_held_memory_mb(target: str, size: Tuple[int, int], batch: int, mode: str) -> float:
    """The memory a process keeps after two steps, above what it held with the model built, measured in a fresh
    process set up as the inference tools run (:func:`~convmlp_mm.utils.allocator.retain_freed_memory`): glibc's
    retained heap for PyTorch's tensors, onnxruntime's and OpenVINO's arenas, oneDNN's caches."""
    env = {k: v for k, v in os.environ.items() if k not in ENVIRONMENT}
    return _in_child('_child_held', env, target, size, batch, mode)


def _child_held(target: str, size: List[int], batch: int, mode: str) -> float:
    retain_freed_memory()
    x = torch.randn(batch, 3, *size)
    model = build_target(target, mode, 'cpu', example=x)
    step = make_step(model, x, mode, target_dtype(target))
    before = _process_memory_mb('VmRSS')
    with job_weights(model, target, mode):
        step()
        step()
        return _process_memory_mb('VmRSS') - before


def _eager_module(model: nn.Module) -> nn.Module:
    """The eager module behind torch.compile or another runtime's compiled form."""
    model = getattr(model, 'source', model)
    return getattr(model, '_orig_mod', model)


def format_table(results: Sequence[Measurement], baseline: Optional[str] = None) -> str:
    """A markdown table of ``results``; the last column is images/s relative to ``baseline``'s."""
    base = next((r for r in results if r.name == baseline), results[0])
    lines = [f'| model | params | GMACs | batch | latency (ms) | images/s | peak memory (MB) | held memory (MB) '
             f'| % of matmul rate | speed vs {base.name} |',
             '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |']
    for r in results:
        lines.append(f'| {r.name} | {r.params / 1e6:.2f}M | {r.macs / 1e9:.2f} | {r.batch} | {r.latency_s * 1e3:.1f} '
                     f'| {r.images_per_s:.2f} | {r.peak_mb:.0f} | {r.held_mb:.0f} '
                     f'| {100 * r.matmul_fraction:.0f}% ({r.dtype}) '
                     f'| {r.images_per_s / base.images_per_s:.2f}x |')
    return '\n'.join(lines)


def describe_device(device: str) -> str:
    if device.startswith('cuda'):
        return torch.cuda.get_device_name(device)
    return f'CPU, {torch.get_num_threads()} threads'


def run(targets: List[str], size: Tuple[int, int], batch: int = 1, mode: str = 'infer', device: str = 'cpu',
        warmup: int = 2, repeats: int = 5) -> Tuple[Dict[str, float], List[Measurement]]:
    """Measure several targets in one process on the same random ``batch x 3 x H x W`` input.

    Returns the device's matmul rates (GFLOP/s: ``'fp32'``, and ``'bf16'`` when a target runs in bf16) and
    one :class:`Measurement` per target. ``:bf16`` targets raise ``UnsupportedPrecisionError`` on devices
    without native bf16.
    """
    from ..engine import check_precision
    dtypes = [target_dtype(target) for target in targets]  # fails on a bad name before minutes on the good ones
    if torch.bfloat16 in dtypes:
        bf16 = [target for target, dtype in zip(targets, dtypes) if dtype == torch.bfloat16]
        check_precision(torch.device(device).type, torch.bfloat16, f'benchmark target {", ".join(bf16)}')
    rate_dtypes = {'fp32': torch.float32, **({'bf16': torch.bfloat16} if torch.bfloat16 in dtypes else {})}
    rates = {name: matmul_gflops(device, dtype=dtype) for name, dtype in rate_dtypes.items()}
    x = torch.randn(batch, 3, *size, device=device)
    models = [build_target(target, mode, device, example=x) for target in targets]
    latencies = []
    for target, model, dtype in zip(targets, models, dtypes):
        with job_weights(model, target, mode):
            latencies.append(median_time(make_step(model, x, mode, dtype), device, warmup, repeats))
    # The rate is what the device can reach, so keep the better of a reading before and one after the
    # timings: on a shared machine one reading can land in a busy moment (one did, at 2/3 of the other).
    rates = {name: max(rate, matmul_gflops(device, dtype=rate_dtypes[name])) for name, rate in rates.items()}
    results = []
    for target, model, latency, dtype in zip(targets, models, latencies, dtypes):
        if device.startswith('cuda'):
            step = make_step(model, x, mode, dtype)
            held = torch.cuda.memory_reserved(device)
            with job_weights(model, target, mode):
                peak = peak_memory_mb(step, device)
            held = (torch.cuda.memory_reserved(device) - held) / 2 ** 20
        else:
            peak = cpu_peak_memory_mb(target, size, batch, mode)
            held = cpu_held_memory_mb(target, size, batch, mode)
        macs = count_macs(model, size)
        work = macs * (3 if mode == 'train' else 1)  # a backward pass costs about twice the forward
        rate_name = 'bf16' if dtype == torch.bfloat16 else 'fp32'
        results.append(Measurement(
            name=target, params=sum(p.numel() for p in _eager_module(model).parameters()), macs=macs,
            batch=batch, latency_s=latency, peak_mb=peak, held_mb=held, dtype=rate_name,
            matmul_fraction=2 * work * batch / latency / (rates[rate_name] * 1e9)))
    return rates, results
