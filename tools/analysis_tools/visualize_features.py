"""Draw the strongest channels of ConvMLP's four feature levels for an image, as the paper's figure does.

    python tools/analysis_tools/visualize_features.py IMAGE --checkpoint convmlp_s_imagenet.pth --out features.png
    python tools/analysis_tools/visualize_features.py IMAGE --config configs/detection/retinanet_convmlp_s_fpn.py \
        --checkpoint work_dirs/.../epoch_12.pth --out features.png

One row per level (stride 4, 8, 16, 32): the ``--topk`` channels with the largest summed activation,
overlaid on the image, drawn by mmengine's ``Visualizer.draw_featmap``.
"""
import argparse
from pathlib import Path

import numpy as np
import torch
from mmengine.visualization import Visualizer
from PIL import Image, ImageDraw

from convmlp_mm import ConvMLP
from convmlp_mm.apis import build_from_config
from convmlp_mm.models.pretrained import load_pretrained
from convmlp_mm.utils.cli import run_main

# ImageNet statistics, as in every config of this project (and the official training code).
LABEL_WIDTH = 80  # pixels left of each row for its level, stride and width
MEAN, STD = np.array([123.675, 116.28, 103.53]), np.array([58.395, 57.12, 57.375])


def load_backbone(args: argparse.Namespace) -> ConvMLP:
    if args.config:
        from mmengine.runner import load_checkpoint
        model = build_from_config(args.config)
        if args.checkpoint:
            load_checkpoint(model, args.checkpoint, map_location='cpu')
        backbone = model.backbone
        if not isinstance(backbone, ConvMLP):
            raise SystemExit(f'{args.config} has a {type(backbone).__name__} backbone, not ConvMLP')
        backbone.out_indices = list(range(backbone.num_levels))
    else:
        backbone = ConvMLP(arch=args.arch)
        backbone.init_weights()
        if args.checkpoint:
            load_pretrained(backbone, args.checkpoint)
    return backbone.eval()


def feature_grid(backbone: ConvMLP, image: np.ndarray, topk: int) -> np.ndarray:
    """Rows of ``topk`` channel maps per level, each row labelled with its level and stride."""
    x = torch.from_numpy((image - MEAN) / STD).permute(2, 0, 1)[None].float()
    with torch.no_grad():
        levels = backbone(x)
    rows = []
    for index, feat in zip(backbone.out_indices, levels):
        drawn = Visualizer.draw_featmap(feat[0], image, channel_reduction=None, topk=topk,
                                        arrangement=(1, topk), resize_shape=image.shape[:2])
        label = Image.new('RGB', (LABEL_WIDTH, drawn.shape[0]), (255, 255, 255))
        ImageDraw.Draw(label).multiline_text(
            (6, drawn.shape[0] // 2 - 20), f'level {index}\nstride {2 ** (index + 2)}\n{feat.shape[1]} channels',
            fill=(0, 0, 0))
        rows.append(np.concatenate([np.asarray(label), drawn], axis=1))
    width = max(r.shape[1] for r in rows)
    return np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('image', type=Path)
    parser.add_argument('--config', help='a config with a ConvMLP backbone (else --arch)')
    parser.add_argument('--arch', default='s', help="backbone arch without --config: 's', 'm' or 'l'")
    parser.add_argument('--checkpoint', help='weights: official/converted ConvMLP file, or a checkpoint of --config')
    parser.add_argument('--size', type=int, default=224, help='the image is resized to this square size')
    parser.add_argument('--topk', type=int, default=6, help='channels shown per level (default: 6)')
    parser.add_argument('--out', type=Path, default=Path('features.png'))
    args = parser.parse_args()
    if not args.image.is_file():
        raise SystemExit(f'image {args.image} does not exist')
    image = np.asarray(Image.open(args.image).convert('RGB').resize((args.size, args.size), Image.BILINEAR))
    grid = feature_grid(load_backbone(args), image, args.topk)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).save(args.out)
    print(f'wrote {args.out} ({grid.shape[1]}x{grid.shape[0]})')


if __name__ == '__main__':
    run_main(main)
