"""Time what tools/test.py does, end to end, for several variants in one run: images/s and the metric of each.

    python tools/analysis_tools/benchmark_e2e.py CONFIG CHECKPOINT [--variants default fast deploy bf16] [--repeats 2]
        [--onnx MODEL.onnx] [--cfg-options k=v ...]

    # toy RetinaNet at its own 320x256, then at the full-size configs' test scale (resized into 1333x800)
    python tools/analysis_tools/benchmark_e2e.py configs/detection/toy/retinanet_convmlp_s_fpn_toy.py CKPT
    python tools/analysis_tools/benchmark_e2e.py configs/detection/toy/retinanet_convmlp_s_fpn_toy.py CKPT \\
        --cfg-options "test_dataloader.dataset.pipeline.1.scale=(1333,800)"

Variants: ``default`` is the model as it was before the fast path (``fast_inference=False``), ``fast`` the
shipped default (the backbone's inference form, folded on the fly), ``deploy`` the checkpoint converted by
``tools/model_converters/reparameterize_model.py`` run with ``model.backbone.deploy=True``, ``bf16``/``fp16`` the
fast path with ``--bf16``/``--fp16``. A
variant the device cannot run natively is listed with the reason instead. ``--onnx`` adds ``onnxruntime``: the
checkpoint exported by ``tools/deployment/export_onnx.py``, run as ``tools/test.py CONFIG MODEL.onnx`` runs it. Each
variant is one Runner test (data loading, pre-processing, model, post-processing); images/s counts the batches
after the first (the warm-up), the metric is the full test's. With ``--repeats N`` the variants take turns N
times and the median is shown, so that a busy moment of a shared machine does not fall on one variant only.
"""
import argparse
import numbers
import statistics
import tempfile
import time
from typing import Dict, List, Optional

import torch
from mmengine.config import DictAction
from mmengine.hooks import Hook
from mmengine.runner import Runner

from convmlp_mm.apis import reparameterize
from convmlp_mm.engine import UnsupportedPrecisionError
from convmlp_mm.utils.allocator import retain_freed_memory
from convmlp_mm.utils.benchmark import describe_device
from convmlp_mm.utils.cli import run_main, test_config

#: variant: (backbone options, precision)
VARIANTS = {'default': ({'fast_inference': False}, None), 'fast': ({}, None), 'deploy': ({'deploy': True}, None),
            'bf16': ({}, 'bfloat16'), 'fp16': ({}, 'float16')}
#: The metrics reported for each library's test set (those present; Mask R-CNN has both box and mask AP).
MAIN_METRICS = ('coco/bbox_mAP', 'coco/segm_mAP', 'mIoU', 'accuracy/top1')


class _IterTimer(Hook):
    """Seconds and images of the test iterations after the first."""

    priority = 'VERY_LOW'

    def __init__(self) -> None:
        self.start: Optional[float] = None
        self.seconds = 0.0
        self.images = 0

    def after_test_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        now = time.perf_counter()
        if self.start is not None:
            self.seconds += now - self.start
            self.images += len(outputs)
        self.start = now


def measure(config: str, checkpoint: str, variant: str, cfg_options: Optional[dict], work_dir: str) -> dict:
    if variant == 'onnxruntime':
        cfg = test_config(config, checkpoint, dict(cfg_options or {}, log_level='WARNING'), work_dir)
    else:
        backbone, precision = VARIANTS[variant]
        options = dict(cfg_options or {}, log_level='WARNING',
                       **{f'model.backbone.{key}': value for key, value in backbone.items()})
        cfg = test_config(config, checkpoint, options, work_dir, precision)
    runner = Runner.from_cfg(cfg)
    timer = _IterTimer()
    runner.register_hook(timer)
    metrics = runner.test()
    if timer.images == 0:
        raise SystemExit(f'{config}: the test set needs at least two batches to time one after the warm-up')
    return dict(images_per_s=timer.images / timer.seconds, metrics=metrics)


def main_metrics(metrics: Dict[str, float]) -> str:
    shown = [key for key in MAIN_METRICS if key in metrics] or list(metrics)
    # mmseg reports numpy floats, which `isinstance(x, float)` does not catch.
    return ', '.join(f'{key} {metrics[key]:.4f}' if isinstance(metrics[key], numbers.Real) else f'{key} {metrics[key]}'
                     for key in shown)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--variants', nargs='+', choices=list(VARIANTS), default=['default', 'fast', 'bf16'])
    parser.add_argument('--repeats', type=int, default=1, help='turns of all variants; the median is shown')
    parser.add_argument('--onnx', help='also time this exported model (tools/deployment/export_onnx.py) in onnxruntime')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override settings of the config')
    args = parser.parse_args()
    allocator = retain_freed_memory()  # as tools/test.py runs, for every variant alike
    files = {variant: args.checkpoint for variant in args.variants}
    if args.onnx:
        args.variants.append('onnxruntime')
        files['onnxruntime'] = args.onnx
    runs: Dict[str, List[dict]] = {}
    skipped: Dict[str, str] = {}
    with tempfile.TemporaryDirectory() as work_dir:
        if 'deploy' in files:
            files['deploy'] = str(reparameterize(args.config, args.checkpoint, f'{work_dir}/deploy.pth'))
        for _ in range(args.repeats):
            for variant in args.variants:
                if variant in skipped:
                    continue
                try:
                    runs.setdefault(variant, []).append(
                        measure(args.config, files[variant], variant, args.cfg_options, work_dir))
                except UnsupportedPrecisionError as err:
                    skipped[variant] = str(err)
    print(f'{args.config} on {describe_device("cuda" if torch.cuda.is_available() else "cpu")}, '
          f'torch {torch.__version__}; median of {args.repeats} turn(s); {allocator}')
    base = statistics.median(r['images_per_s'] for r in runs[args.variants[0]]) if args.variants[0] in runs else None
    print(f'| variant | images/s | metric | speed vs {args.variants[0]} |\n| --- | ---: | --- | ---: |')
    for variant in args.variants:
        if variant in skipped:
            print(f'| {variant} | - | not run: {skipped[variant]} | - |')
            continue
        speed = statistics.median(r['images_per_s'] for r in runs[variant])
        ratio = f'{speed / base:.2f}x' if base else '-'
        print(f'| {variant} | {speed:.2f} | {main_metrics(runs[variant][-1]["metrics"])} | {ratio} |')


if __name__ == '__main__':
    run_main(main)
