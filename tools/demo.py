"""Run a trained model on images and write them with the predictions drawn.

    python tools/demo.py IMAGE_OR_FOLDER CONFIG CHECKPOINT [--out-dir outputs/] [--device cpu]

Works for detection and segmentation configs: the config's ``default_scope`` picks MMDetection's or
MMSegmentation's inferencer.
"""
import argparse
import os.path as osp

from mmengine.config import Config

import convmlp_mm  # noqa: F401  (registers ConvMLP; lets torch load mmengine checkpoints safely)


def build_inferencer(config: str, checkpoint: str, device: str):
    scope = Config.fromfile(config).get('default_scope')
    if scope == 'mmdet':
        from mmdet.apis import DetInferencer
        return DetInferencer(model=config, weights=checkpoint, device=device, show_progress=False)
    if scope == 'mmseg':
        from mmseg.apis import MMSegInferencer
        return MMSegInferencer(model=config, weights=checkpoint, device=device)
    raise SystemExit(f"{config}: default_scope {scope!r} is none of 'mmdet', 'mmseg'")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('inputs', help='an image file or a folder of images')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--out-dir', default='outputs', help='where to write the drawn images')
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args()
    for path in (args.inputs, args.config, args.checkpoint):
        if not osp.exists(path):
            raise SystemExit(f'{path} does not exist')
    inferencer = build_inferencer(args.config, args.checkpoint, args.device)
    inferencer(args.inputs, out_dir=args.out_dir)
    print(f'wrote the images with predictions under {osp.join(args.out_dir, "vis")}')


if __name__ == '__main__':
    main()
