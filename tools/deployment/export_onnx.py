"""Export to ONNX (batch, height and width dynamic) and check the file with onnxruntime against PyTorch.

    # a whole model: detector (boxes, scores, labels), segmentor (class map) or classifier (class scores)
    python tools/deployment/export_onnx.py --config configs/detection/retinanet_convmlp_s_fpn.py \
        --checkpoint work_dirs/.../epoch_12.pth --out retinanet_s.onnx
    # the backbone alone, or a config's backbone + neck (feature maps)
    python tools/deployment/export_onnx.py --arch s --checkpoint convmlp_s_imagenet.pth --out convmlp_s.onnx
    python tools/deployment/export_onnx.py --config CONFIG --checkpoint CKPT --features --out features.onnx

A whole model is written with ``MODEL.onnx.json`` beside it: the pre-processing (mean/std, BGR→RGB,
padding), the task and the class names, which ``tools/test.py CONFIG MODEL.onnx`` and
``tools/demo.py IMAGE CONFIG MODEL.onnx`` read. ``--deploy`` exports the backbone's fused inference form
(``switch_to_deploy()``). The check runs PyTorch and onnxruntime on two input sizes and fails (exit 1) when
they differ by more than ``--tolerance`` (feature maps, scores; detections, paired by image, label and
closeness since near-equal scores may come in another order: box coordinates relative to the image size).
Nothing is left at ``--out`` when the export or the check fails.
"""
import argparse
import sys
from pathlib import Path
from typing import List, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
from mmengine.config import DictAction

from convmlp_mm import ConvMLP
from convmlp_mm.apis import init_model
from convmlp_mm.compat import require_torch
from convmlp_mm.deploy import TensorNetwork, export_model, pair_detections
from convmlp_mm.deploy.preprocessing import sidecar_path
from convmlp_mm.fileio import replace_atomically
from convmlp_mm.models.pretrained import load_pretrained
from convmlp_mm.utils.cli import run_main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group()
    source.add_argument('--arch', default='s', help="backbone arch: 's', 'm' or 'l' (default: s)")
    source.add_argument('--config', help='a detection, segmentation or classification config: export its model')
    parser.add_argument('--checkpoint',
                        help='weights: an official or converted ConvMLP file, or a checkpoint of --config')
    parser.add_argument('--features', action='store_true',
                        help="with --config: export the backbone + neck's feature maps instead of the whole model")
    parser.add_argument('--out-indices', type=int, nargs='+', default=[0, 1, 2, 3],
                        help='backbone levels (with --arch)')
    parser.add_argument('--deploy', action='store_true', help="export the backbone's fused inference form")
    parser.add_argument('--out', required=True, type=Path, help='the .onnx file to write')
    parser.add_argument('--check-sizes', type=int, nargs=4, default=[224, 224, 320, 416],
                        metavar=('H1', 'W1', 'H2', 'W2'),
                        help='the two input sizes of the onnxruntime check (default: 224 224 320 416)')
    parser.add_argument('--tolerance', type=float, default=1e-4, help='max difference allowed (default: 1e-4)')
    parser.add_argument('--opset', type=int, default=18)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help="with --config: override its settings, e.g. model.test_cfg.score_thr=0.3")
    args = parser.parse_args()
    if args.features and not args.config:
        parser.error('--features needs --config')
    return args


def build_features(args: argparse.Namespace) -> nn.Module:
    if args.config:
        model = TensorNetwork(init_model(args.config, args.checkpoint), 'features')
        backbone = model.model.backbone
    else:
        model = backbone = ConvMLP(arch=args.arch, out_indices=args.out_indices)
        model.init_weights()
        if args.checkpoint:
            load_pretrained(model, args.checkpoint)
    model.eval()
    if args.deploy:
        backbone.switch_to_deploy()
    return model


def export_features(model: nn.Module, path: Path, opset: int) -> None:
    require_torch((2, 6), 'ONNX export')
    x = torch.randn(2, 3, 224, 224)  # batch 2: torch.export would fix a dimension of size 1
    with torch.no_grad():
        num_outputs = len(model(x))
    dynamic = {'x': {0: torch.export.Dim('batch', min=1, max=256), 2: torch.export.Dim('height', min=32, max=4096),
                     3: torch.export.Dim('width', min=32, max=4096)}}

    def write(tmp: Path) -> None:
        torch.onnx.export(model, (x,), str(tmp), input_names=['image'],
                          output_names=[f'level{i}' for i in range(num_outputs)], opset_version=opset,
                          dynamo=True, dynamic_shapes=dynamic, external_data=False)

    replace_atomically(write, path)


def example_inputs(task: str, size: Tuple[int, int]) -> List[torch.Tensor]:
    image = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(0))  # the same check every run
    if task != 'detection':
        return [image]
    return [image, torch.tensor([size, (size[0] - 8, size[1] - 16)], dtype=torch.float32),
            torch.tensor([[1.0, 1.0], [0.5, 0.5]])]


def differences(task: str, expected: Sequence[np.ndarray], got: Sequence[np.ndarray], size) -> List[float]:
    """Per output, the largest difference; for detections, of paired detections (``pair_detections``), the
    box coordinates relative to the image size."""
    if task != 'detection':
        return [float(np.abs(e.astype(np.float64) - g).max()) if e.size else 0.0 for e, g in zip(expected, got)]
    if expected[0].shape != got[0].shape:
        return [float('inf')]  # another number of detections
    boxes, scores, labels, images = expected[:4]
    pairs = pair_detections(np.stack([images, labels], 1), scores, boxes, np.stack([got[3], got[2]], 1), got[1],
                            got[0], box_scale=max(size))
    if (pairs < 0).any():
        return [float('inf')]  # a detection of another image or label
    got = [g[pairs] for g in got]
    diffs = [float(np.abs(boxes - got[0]).max() / max(size)) if boxes.size else 0.0]
    return diffs + [float(np.abs(e - g).max()) if e.size else 0.0 for e, g in zip(expected[1:], got[1:])
                    if e.dtype.kind == 'f']  # scores (and mask probabilities)


def check(model: nn.Module, task: str, path: Path, sizes, tolerance: float) -> float:
    import onnxruntime as ort
    session = ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    names = [i.name for i in session.get_inputs()]
    worst = 0.0
    for size in sizes:
        inputs = example_inputs(task, size)
        with torch.no_grad():
            out = model(*inputs)
        expected = [t.numpy() for t in (out if isinstance(out, (tuple, list)) else [out])]
        got = session.run(None, dict(zip(names, (t.numpy() for t in inputs))))
        diffs = differences(task, expected, got, size)
        shapes = ', '.join('x'.join(map(str, g.shape)) for g in got)
        print(f'input 2x3x{size[0]}x{size[1]}: outputs {shapes}; max difference vs PyTorch '
              + ', '.join(f'{d:.2e}' for d in diffs))
        worst = max([worst] + diffs)
    print(f'max difference {worst:.2e} (tolerance {tolerance:g})')
    return worst


def main() -> None:
    args = parse_args()
    h1, w1, h2, w2 = args.check_sizes
    if args.config and not args.features:
        meta, model = export_model(args.config, args.checkpoint, str(args.out), opset=args.opset, deploy=args.deploy,
                                   cfg_options=args.cfg_options)
        task = meta['task']
        print(f'wrote {args.out} ({args.out.stat().st_size / 2 ** 20:.1f} MiB): the whole {task} model, '
              f'outputs {", ".join(meta["output_names"])}; pre-processing in {args.out}.json')
    else:
        task, model = 'features', build_features(args)
        export_features(model, args.out, args.opset)
        print(f'wrote {args.out} ({args.out.stat().st_size / 2 ** 20:.1f} MiB)')
    worst = check(model, task, args.out, ((h1, w1), (h2, w2)), args.tolerance)
    if worst > args.tolerance:
        # A file that does not give the model's answers must not be mistaken for one that does.
        for path in (args.out, sidecar_path(str(args.out))):
            path.unlink(missing_ok=True)
        sys.exit(f'error: onnxruntime\'s outputs differ from PyTorch\'s by {worst:.2e}, above --tolerance '
                 f'{args.tolerance:g}; {args.out} was removed')


if __name__ == '__main__':
    run_main(main)
