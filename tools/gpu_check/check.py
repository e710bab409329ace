"""The GPU check: the paper's training and test jobs on one CUDA GPU, ConvMLP against ResNet-50 and Swin-T.

    python tools/gpu_check/check.py [--out DIR] [--dry-run] [--budget SECONDS] [--only PART ...]
    (tools/gpu_check/run.sh sets up the stack from carried wheels first, then runs this)

Parts, in this order (each writes its rows as soon as they are measured, so a run cut short keeps them):

- ``roi_align``: Mask R-CNN's RoI extractor (mmcv's RoIAlign) on channels-last against NCHW neck levels;
- ``train``: one training step of RetinaNet and Mask R-CNN (2 images of 1333x800) and Semantic FPN (4 of
  512x512) with ConvMLP-S/M/L, ResNet-50 and Swin-T, in fp32 (TF32 as mmengine leaves it), ``--amp`` fp16
  (mmengine's AmpOptimWrapper with dynamic loss scaling) and bf16, with and without ``with_cp``: step time,
  images/s, peak GPU memory;
- ``infer``: test-step images/s of the same models for ``default`` (fp32), ``fast`` (ConvMLP's fused copy)
  and ``fp16``/``bf16`` (tools/test.py --fp16/--bf16), with the outputs compared to ``default``;
- ``toy_amp``: the toy RetinaNet (configs/detection/toy/) trained by tools/train.py --amp, its bbox mAP
  (bar 0.6), then (``toy_precision``) that trained model tested end to end in each precision
  (tools/analysis_tools/benchmark_e2e.py's measurement): images/s and bbox mAP, which fp16/bf16 must keep within 0.01.

``--dry-run`` runs the same parts at toy size on whatever device there is (the CPU in CI): small images,
1 timed step and no warm-up, one epoch of a tiny toy set; precisions the device cannot run are listed with the reason.
It writes ``gpu_check.md`` (one table per part) and ``gpu_check.json`` to ``--out``.
"""
import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parents[2]
# The package of this checkout (also where it is not installed), report.py beside this file and
# tools/analysis_tools/benchmark_e2e.py (its end-to-end test measurement).
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent), str(ROOT / 'tools' / 'analysis_tools')]

import torch  # noqa: E402
from report import Report  # noqa: E402

from convmlp_mm.apis import build_from_config  # noqa: E402
from convmlp_mm.engine.precision import mixed_precision, unsupported_reason  # noqa: E402
from convmlp_mm.utils.benchmark import median_time, peak_memory_mb  # noqa: E402

PARTS = ('roi_align', 'train', 'infer', 'toy_amp')
BACKBONES = ('convmlp-s', 'convmlp-m', 'convmlp-l', 'r50', 'swin-t')
PRECISIONS = ('fp32', 'fp16', 'bf16')
SWIN_T = dict(_delete_=True, type='SwinTransformer', embed_dims=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24],
              window_size=7, mlp_ratio=4, qkv_bias=True, drop_path_rate=0.2, patch_norm=True,
              out_indices=(0, 1, 2, 3), init_cfg=None)
#: task -> (ConvMLP config pattern, ResNet-50 base, Swin-T base or None to swap Swin-T into the R-50 one)
TASKS = {
    'retinanet': ('configs/detection/retinanet_convmlp_{}_fpn.py', 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
                  'mmdet::swin/retinanet_swin-t-p4-w7_fpn_1x_coco.py'),
    'mask_rcnn': ('configs/detection/mask_rcnn_convmlp_{}_fpn.py', 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
                  'mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py'),
    'semantic_fpn': ('configs/segmentation/fpn_convmlp_{}_ade20k.py',
                     'mmseg::sem_fpn/fpn_r50_4xb4-160k_ade20k-512x512.py', None),
}
#: (height, width, images per step) at full size and in a dry run
SIZES = {'det': ((800, 1333, 2), (96, 128, 1)), 'seg': ((512, 512, 4), (64, 64, 2))}
TOY_CONFIG = 'configs/detection/toy/retinanet_convmlp_s_fpn_toy.py'
#: Stated tolerances of reduced-precision and fast outputs against fp32 default ones (fraction that must agree).
TOLERANCES = {'boxes': 0.9, 'masks': 0.9, 'class_map': 0.95}


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='The prepared GPU check (docs/performance.md, GPU)')
    parser.add_argument('--out', default='gpu_check_out', help='folder for gpu_check.md and gpu_check.json')
    parser.add_argument('--dry-run', action='store_true', help='the same parts at toy size, on any device')
    parser.add_argument('--budget', type=float, default=540.0,
                        help='seconds after which the remaining measurements are listed as skipped (default 540)')
    parser.add_argument('--only', nargs='+', choices=PARTS, default=list(PARTS), help='run only these parts')
    parser.add_argument('--backbones', nargs='+', choices=BACKBONES, default=list(BACKBONES))
    parser.add_argument('--tasks', nargs='+', choices=sorted(TASKS), default=sorted(TASKS))
    parser.add_argument('--repeats', type=int, help='timed steps per measurement (default 10, dry run 1)')
    args = parser.parse_args(argv)
    if args.budget <= 0:
        parser.error(f'--budget must be positive, got {args.budget}')
    if args.repeats is None:
        args.repeats = 1 if args.dry_run else 10
    # a dry run checks that each step runs; its timings at toy size on a CPU mean nothing, so nothing warms up
    args.warmup = 0 if args.dry_run else 2
    if args.repeats < 1:
        parser.error(f'--repeats must be at least 1, got {args.repeats}')
    return args


def model_config(task: str, backbone: str, folder: Path):
    """The Config of ``task`` with ``backbone`` (random initialization: nothing is downloaded)."""
    from mmengine.config import Config
    ours, r50, swin = TASKS[task]
    if backbone.startswith('convmlp'):
        return Config.fromfile(str(ROOT / ours.format(backbone[-1])))
    lines = [f'_base_ = {(swin if backbone == "swin-t" and swin else r50)!r}']
    if backbone == 'swin-t' and not swin:
        lines.append(f'model = dict(pretrained=None, backbone={SWIN_T!r}, neck=dict(in_channels=[96, 192, 384, 768]))')
    elif task == 'semantic_fpn':
        lines.append('model = dict(pretrained=None)')
    path = folder / f'{task}_{backbone}.py'
    path.write_text('\n'.join(lines) + '\n')
    return Config.fromfile(str(path))


def synthetic_batch(task: str, height: int, width: int, images: int, device: str) -> dict:
    """Images and annotations in the form the libraries' data loaders hand to ``train_step``/``test_step``."""
    from mmengine.structures import InstanceData, PixelData
    generator = torch.Generator().manual_seed(0)
    inputs = [torch.randint(0, 256, (3, height, width), dtype=torch.uint8, generator=generator)
              for _ in range(images)]
    samples = []
    for _ in range(images):
        meta = dict(img_shape=(height, width), ori_shape=(height, width), pad_shape=(height, width),
                    scale_factor=(1.0, 1.0))
        if task == 'semantic_fpn':
            from mmseg.structures import SegDataSample
            sample = SegDataSample(metainfo=meta)
            sample.gt_sem_seg = PixelData(data=torch.randint(0, 150, (1, height, width), generator=generator))
        else:
            from mmdet.structures import DetDataSample
            from mmdet.structures.mask import BitmapMasks
            sample = DetDataSample(metainfo=meta)
            xy = torch.rand(8, 2, generator=generator) * torch.tensor([width * 0.6, height * 0.6])
            wh = 16 + torch.rand(8, 2, generator=generator) * torch.tensor([width * 0.3, height * 0.3])
            boxes = torch.cat([xy, xy + wh], 1)
            masks = torch.zeros(8, height, width, dtype=torch.uint8)
            for m, (x0, y0, x1, y1) in zip(masks, boxes.long().tolist()):
                m[y0:y1, x0:x1] = 1
            sample.gt_instances = InstanceData(bboxes=boxes, labels=torch.randint(0, 80, (8,), generator=generator),
                                               masks=BitmapMasks(masks.numpy(), height, width))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def build(task: str, backbone: str, folder: Path, device: str, with_cp: bool = False,
          size: Optional[Tuple[int, int]] = None):
    """The model with random weights. Detectors keep every detection (score threshold 0): with random weights
    few pass the configs' 0.05, and the outputs compared below must not be empty. With ``size`` (height, width
    of the measured images), segmentors pad training batches to it instead of the configs' 512x512 crop: the
    same at full size, and a dry run's toy images stay toy-sized."""
    from mmengine.model import revert_sync_batchnorm
    cfg = model_config(task, backbone, folder)
    if size and task == 'semantic_fpn' and cfg.model.data_preprocessor.get('size'):
        cfg.model.data_preprocessor.size = tuple(size)
    test_cfg = cfg.model.get('test_cfg') or {}
    for stage in [test_cfg, test_cfg.get('rcnn')]:
        if stage and 'score_thr' in stage:
            stage.score_thr = 0.0
    args = dict(with_cp=True) if with_cp else {}
    return revert_sync_batchnorm(build_from_config(cfg, **args)).to(device)


def optim_wrapper(model, precision: str, device: str):
    from mmengine.optim import AmpOptimWrapper, OptimWrapper

    from convmlp_mm.engine.precision import AutocastOptimWrapper
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    if precision == 'fp32':
        return OptimWrapper(optimizer)
    dtype = 'float16' if precision == 'fp16' else 'bfloat16'
    if device == 'cuda':
        return AmpOptimWrapper(optimizer=optimizer, dtype=dtype)
    return AutocastOptimWrapper(dtype=dtype, optimizer=optimizer)


def precision_reason(precision: str, device: str) -> Optional[str]:
    if precision == 'fp32':
        return None
    return unsupported_reason(device, torch.float16 if precision == 'fp16' else torch.bfloat16)


def measure_train(report: Report, args, device: str, folder: Path) -> None:
    for task in args.tasks:
        height, width, images = SIZES['seg' if task == 'semantic_fpn' else 'det'][args.dry_run]
        batch = synthetic_batch(task, height, width, images, device)
        for backbone in args.backbones:
            for with_cp in (False, True):
                # one model per (task, backbone, with_cp), its precisions timed in turn, each with a fresh
                # optimizer: building a full-size detector costs more than the steps timed on it
                model = None
                for precision in PRECISIONS:
                    row = dict(task=task, backbone=backbone, precision=precision, with_cp=with_cp,
                               input=f'{images}x{height}x{width}')
                    if with_cp and precision == 'fp16':
                        continue  # with_cp is measured in fp32 and bf16: memory, not precision, is the question
                    reason = precision_reason(precision, device)
                    if reason or not report.time_left():
                        report.add('train', row, skipped=reason or 'time budget spent')
                        continue
                    if model is None:
                        model = build(task, backbone, folder, device, with_cp, size=(height, width)).train()
                    wrapper = optim_wrapper(model, precision, device)

                    def step(model=model, wrapper=wrapper) -> None:
                        model.train_step(batch, wrapper)
                    seconds = median_time(step, device, warmup=args.warmup, repeats=args.repeats)
                    peak = peak_memory_mb(step, device) if device == 'cuda' else float('nan')
                    report.add('train', dict(row, step_s=seconds, images_per_s=images / seconds, peak_mb=peak))
                    del wrapper
                del model
                _free(device)


def _predictions(model, batch: dict, precision: str, device: str) -> list:
    with torch.no_grad():
        if precision in ('fp16', 'bf16'):
            with mixed_precision(model, 'float16' if precision == 'fp16' else 'bfloat16', device):
                return model.test_step(batch)
        return model.test_step(batch)


def agreement(task: str, reference: list, other: list, size: float) -> Dict[str, float]:
    """The fraction of the reference's outputs that ``other`` reproduces: of its 100 best detections, those paired
    (same label, box within 1% of the image size, score within 0.05) and their masks' IoU above 0.8; of a
    class map, the pixels equal."""
    from convmlp_mm.deploy import pair_detections
    if task == 'semantic_fpn':
        equal = sum(float((a.pred_sem_seg.data == b.pred_sem_seg.data).float().mean())
                    for a, b in zip(reference, other))
        return dict(class_map=equal / len(reference))
    boxes = masks = total = 0
    for a, b in zip(reference, other):
        ia, ib = a.pred_instances, b.pred_instances
        ia = ia[ia.scores.argsort(descending=True)[:100]]  # the reference's 100 best
        pairs = pair_detections(*_as_numpy(ia), *_as_numpy(ib), box_scale=size)
        for i, j in enumerate(pairs.tolist()):
            total += 1
            if j < 0:
                continue
            close = (abs(float(ia.scores[i]) - float(ib.scores[j])) <= 0.05
                     and float((ia.bboxes[i].float() - ib.bboxes[j].float()).abs().max()) <= 0.01 * size)
            boxes += close
            if close and 'masks' in ia:
                ma, mb = ia.masks[i].bool(), ib.masks[j].bool()
                union = float((ma | mb).sum())
                masks += union == 0 or float((ma & mb).sum()) / union > 0.8
    result = dict(boxes=boxes / total if total else float('nan'))
    if task == 'mask_rcnn':
        result['masks'] = masks / total if total else float('nan')
    return result


def _as_numpy(instances) -> tuple:
    return (instances.labels.cpu().numpy(), instances.scores.float().cpu().numpy(),
            instances.bboxes.float().cpu().numpy())


def measure_infer(report: Report, args, device: str, folder: Path) -> None:
    for task in args.tasks:
        height, width, images = SIZES['seg' if task == 'semantic_fpn' else 'det'][args.dry_run]
        batch = synthetic_batch(task, height, width, images, device)
        for backbone in args.backbones:
            if not report.time_left():
                report.add('infer', dict(task=task, backbone=backbone), skipped='time budget spent')
                continue
            model = build(task, backbone, folder, device).eval()
            fused = getattr(model.backbone, 'fast_inference', None)
            reference = None
            for variant in ('default', 'fast', 'fp16', 'bf16'):
                row = dict(task=task, backbone=backbone, variant=variant, input=f'{images}x{height}x{width}')
                if variant == 'fast' and fused is None:
                    report.add('infer', row, skipped='ConvMLP only')
                    continue
                reason = precision_reason(variant if variant in PRECISIONS else 'fp32', device)
                if reason:
                    report.add('infer', row, skipped=reason)
                    continue
                if fused is not None:
                    model.backbone.fast_inference = variant != 'default'
                precision = variant if variant in ('fp16', 'bf16') else 'fp32'
                seconds = median_time(lambda model=model: _predictions(model, batch, precision, device), device,
                                      warmup=args.warmup, repeats=args.repeats)
                outputs = _predictions(model, batch, precision, device)
                if reference is None:  # default, fp32: what the others are compared with
                    reference = outputs
                    report.add('infer', dict(row, images_per_s=images / seconds))
                    continue
                match = agreement(task, reference, outputs, float(max(height, width)))
                if variant == 'fast':  # the same weights folded: fp32 rounding apart, the same outputs
                    match['within_tolerance'] = all(v >= TOLERANCES[k] for k, v in match.items() if v == v)
                # fp16/bf16 on random weights: the ranking of near-equal scores is noise, so the agreement is
                # shown but judged on the trained toy model instead (toy_precision)
                report.add('infer', dict(row, images_per_s=images / seconds, **match))
            del model
            _free(device)


def measure_roi_align(report: Report, args, device: str, folder: Path) -> None:
    """Mask R-CNN's RoI extractor on channels-last levels against contiguous NCHW ones (the CPU RoIAlign of
    mmcv 2.1 once read channels-last memory as NCHW and pooled wrong features, silently)."""
    height, width, images = SIZES['det'][args.dry_run]
    model = build('mask_rcnn', 'convmlp-s', folder, device).eval()
    batch = model.data_preprocessor(synthetic_batch('mask_rcnn', height, width, images, device), False)
    with torch.no_grad():
        levels = model.extract_feat(batch['inputs'])
        rois = torch.cat([torch.zeros(64, 1), torch.rand(64, 2) * 0.5 * width,
                          torch.rand(64, 2) * 0.5 * width + 0.5 * width], 1).to(device)
        rois[:, [2, 4]] = rois[:, [2, 4]].clamp(max=height - 1)
        extractor = model.roi_head.bbox_roi_extractor
        nchw = extractor([f.contiguous() for f in levels[:extractor.num_inputs]], rois)
        nhwc = extractor([f.contiguous(memory_format=torch.channels_last) for f in levels[:extractor.num_inputs]], rois)
    error = float((nchw - nhwc).abs().max())
    scale = float(nchw.abs().max())
    report.add('roi_align', dict(device=device, rois=len(rois), max_abs_error=error, feature_scale=scale,
                                 within_tolerance=error <= 1e-4 * max(scale, 1.0)))


def measure_toy_amp(report: Report, args, device: str, folder: Path) -> None:
    """Train the toy RetinaNet with ``tools/train.py --amp``, then test the result in each precision
    (``tools/analysis_tools/benchmark_e2e.py``'s measurement): a trained model's metric is what fp16/bf16 must keep."""
    data = folder / 'toy_coco'
    sizes = ['--num-train', '16', '--num-val', '8', '--size', '160', '128'] if args.dry_run else []
    make_toy_data = ROOT / 'tools' / 'misc' / 'make_toy_data.py'
    subprocess.run([sys.executable, str(make_toy_data), 'det', str(data), *sizes], check=True, capture_output=True,
                   text=True)
    options = [f'{loader}.dataset.data_root={data}/' for loader in ('train_dataloader', 'val_dataloader',
                                                                   'test_dataloader')]
    options += [f'val_evaluator.ann_file={data}/annotations/instances_val.json',
                f'test_evaluator.ann_file={data}/annotations/instances_val.json']
    epochs = 1 if args.dry_run else 12
    if args.dry_run:  # one epoch; after it no score passes mmdet's 0.05, and CocoMetric would report nothing
        options += ['train_cfg.max_epochs=1', 'train_cfg.val_interval=1', 'model.test_cfg.score_thr=0.0']
    reason = precision_reason('bf16' if device == 'cpu' else 'fp16', device)
    row = dict(config=TOY_CONFIG, device=device, bar=0.6)
    if reason or not report.time_left():
        report.add('toy_amp', row, skipped=reason or 'time budget spent')
        return
    start = time.perf_counter()
    work = folder / 'toy_work'
    proc = subprocess.run([sys.executable, str(ROOT / 'tools' / 'train.py'), TOY_CONFIG, '--amp', '--work-dir',
                           str(work), '--cfg-options', *options], capture_output=True, text=True, cwd=ROOT)
    found = re.findall(r'coco/bbox_mAP: (-?[\d.]+)', proc.stdout + proc.stderr)
    mean_ap = float(found[-1]) if found else float('nan')
    report.add('toy_amp', dict(row, returncode=proc.returncode, bbox_mAP=mean_ap,
                               minutes=(time.perf_counter() - start) / 60,
                               passed=proc.returncode == 0 and mean_ap >= 0.6))
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        return
    from benchmark_e2e import measure
    cfg_options = {'test_dataloader.dataset.data_root': f'{data}/',
                   'test_evaluator.ann_file': f'{data}/annotations/instances_val.json'}
    if args.dry_run:
        cfg_options['model.test_cfg.score_thr'] = 0.0
    reference = None
    for variant in ('default', 'fast', 'fp16', 'bf16'):
        row = dict(config=TOY_CONFIG, variant=variant)
        reason = precision_reason(variant if variant in PRECISIONS else 'fp32', device)
        if reason or not report.time_left():
            report.add('toy_precision', row, skipped=reason or 'time budget spent')
            continue
        result = measure(str(ROOT / TOY_CONFIG), str(work / f'epoch_{epochs}.pth'), variant, cfg_options,
                         str(folder / 'toy_test'))
        value = float(result['metrics'].get('coco/bbox_mAP', float('nan')))
        reference = value if reference is None else reference
        report.add('toy_precision', dict(row, images_per_s=result['images_per_s'], bbox_mAP=value,
                                         delta=value - reference, within_tolerance=abs(value - reference) <= 0.01))


def _free(device: str) -> None:
    if device == 'cuda':
        torch.cuda.empty_cache()


MEASURES: Dict[str, Callable] = {'roi_align': measure_roi_align, 'train': measure_train, 'infer': measure_infer,
                                 'toy_amp': measure_toy_amp}


def main(argv: Optional[List[str]] = None) -> Report:
    args = parse_args(argv)
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    if device == 'cpu' and not args.dry_run:
        raise SystemExit('no CUDA GPU is visible; run with --dry-run to check the steps at toy size on the CPU')
    import mmdet.models  # noqa: F401  registers the detectors, ResNet and Swin
    import mmseg.models  # noqa: F401
    report = Report(Path(args.out), budget_s=args.budget, device=device, dry_run=args.dry_run)
    with tempfile.TemporaryDirectory() as tmp:
        for part in PARTS:
            if part in args.only:
                MEASURES[part](report, args, device, Path(tmp))
    report.write()
    print(report.markdown())
    return report


if __name__ == '__main__':
    main()
