"""Export the ConvMLP backbone, or a config's backbone + neck, to ONNX with dynamic height and width, then
check the file with onnxruntime at two input sizes against PyTorch.

    python tools/export_onnx.py --arch s --out convmlp_s.onnx                     # random weights
    python tools/export_onnx.py --arch l --out-indices 3 --checkpoint convmlp_l_imagenet.pth --out l.onnx
    python tools/export_onnx.py --config configs/detection/retinanet_convmlp_s_fpn.py \
        --checkpoint work_dirs/.../epoch_12.pth --out retinanet_s_features.onnx --deploy

``--deploy`` exports the fused inference form (``switch_to_deploy()``: BatchNorm and LayerNorm affines
folded). The check prints the max abs difference per output and fails (exit 1) above ``--tolerance``.
"""
import argparse
import sys
from pathlib import Path
from typing import List, Tuple

import numpy as np
import torch
import torch.nn as nn

from convmlp_mm import ConvMLP
from convmlp_mm.models.pretrained import load_pretrained
from convmlp_mm.utils.benchmark import build_target
from convmlp_mm.utils.cli import run_main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group()
    source.add_argument('--arch', default='s', help="backbone arch: 's', 'm' or 'l' (default: s)")
    source.add_argument('--config', help='a detection/segmentation config: export its backbone + neck')
    parser.add_argument('--checkpoint',
                        help='weights: an official or converted ConvMLP file, or a checkpoint of --config')
    parser.add_argument('--out-indices', type=int, nargs='+', default=[0, 1, 2, 3],
                        help='backbone levels (with --arch)')
    parser.add_argument('--deploy', action='store_true', help='export the fused inference form')
    parser.add_argument('--out', required=True, type=Path, help='the .onnx file to write')
    parser.add_argument('--check-sizes', type=int, nargs=4, default=[224, 224, 320, 416],
                        metavar=('H1', 'W1', 'H2', 'W2'),
                        help='the two input sizes of the onnxruntime check (default: 224 224 320 416)')
    parser.add_argument('--tolerance', type=float, default=1e-4, help='max abs difference allowed (default: 1e-4)')
    parser.add_argument('--opset', type=int, default=18)
    return parser.parse_args()


def build(args: argparse.Namespace) -> nn.Module:
    if args.config:
        model = build_target(args.config, 'infer')  # backbone + neck, random weights
        if args.checkpoint:
            from mmengine.runner import load_checkpoint
            load_checkpoint(model.model, args.checkpoint, map_location='cpu', strict=True)
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


def export(model: nn.Module, path: Path, opset: int) -> List[str]:
    """Write ``path`` with batch, height and width dynamic; returns the output names."""
    x = torch.randn(2, 3, 224, 224)  # batch 2: torch.export would fix a dimension of size 1
    with torch.no_grad():
        num_outputs = len(model(x))
    names = [f'level{i}' for i in range(num_outputs)]
    dynamic = {'x': {0: torch.export.Dim('batch', min=1, max=256), 2: torch.export.Dim('height', min=32, max=4096),
                     3: torch.export.Dim('width', min=32, max=4096)}}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(model, (x,), str(path), input_names=['image'], output_names=names, opset_version=opset,
                      dynamo=True, dynamic_shapes=dynamic, external_data=False)
    return names


def check(model: nn.Module, path: Path, sizes: Tuple[Tuple[int, int], ...], tolerance: float) -> float:
    import onnxruntime as ort
    session = ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    worst = 0.0
    for size in sizes:
        x = torch.randn(2, 3, *size)
        with torch.no_grad():
            expected = [t.numpy() for t in model(x)]
        got = session.run(None, {session.get_inputs()[0].name: x.numpy()})
        diffs = [float(np.abs(e - g).max()) for e, g in zip(expected, got)]
        shapes = ', '.join('x'.join(map(str, g.shape)) for g in got)
        print(f'input 2x3x{size[0]}x{size[1]}: outputs {shapes}; max abs diff vs PyTorch '
              + ', '.join(f'{d:.2e}' for d in diffs))
        worst = max([worst] + diffs)
    print(f'max abs difference {worst:.2e} (tolerance {tolerance:g})')
    return worst


def main() -> None:
    args = parse_args()
    model = build(args)
    export(model, args.out, args.opset)
    print(f'wrote {args.out} ({args.out.stat().st_size / 2 ** 20:.1f} MiB)')
    h1, w1, h2, w2 = args.check_sizes
    if check(model, args.out, ((h1, w1), (h2, w2)), args.tolerance) > args.tolerance:
        sys.exit(1)


if __name__ == '__main__':
    run_main(main)
