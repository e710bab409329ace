"""Run a trained model on images: draw detections / segmentation masks, or print the top-5 classes.

    python tools/demo.py IMAGE_OR_FOLDER CONFIG CHECKPOINT [--out-dir outputs/] [--device cpu] [--bf16 | --fp16]
    python tools/demo.py IMAGE_OR_FOLDER CONFIG MODEL.onnx      # the exported model, run by onnxruntime

The config's ``default_scope`` picks MMDetection's, MMSegmentation's or MMPretrain's inferencer. Drawn
images go to OUT_DIR/vis/. With a ``.onnx`` file (``tools/deployment/export_onnx.py``), onnxruntime runs the
model in the inferencer's place; images are read and drawn as for PyTorch. The ConvMLP backbone runs its inference
form (``fast_inference``); ``--bf16``/``--fp16`` run the network in reduced precision
(``convmlp_mm.engine.mixed_precision``) where the device has it.
"""
import argparse
import contextlib
import os
import os.path as osp

import numpy as np
from mmengine.config import Config

import convmlp_mm  # noqa: F401  (registers ConvMLP; lets torch load mmengine checkpoints safely)
from convmlp_mm.deploy import OnnxRuntimeModel
from convmlp_mm.engine import mixed_precision
from convmlp_mm.utils.allocator import retain_freed_memory
from convmlp_mm.utils.cli import add_precision_flags, checked_precision, run_main


def run_with_onnxruntime(inferencer, onnx_file: str) -> None:
    """Put the exported model in the inferencer's place: its pipeline and visualizer stay the config's."""
    inferencer.model = OnnxRuntimeModel(onnx_file)
    if inferencer.model.dataset_meta.get('classes') and getattr(inferencer, 'visualizer', None) is not None:
        inferencer.visualizer.dataset_meta = inferencer.model.dataset_meta


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('inputs', help='an image file or a folder of images')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--out-dir', default='outputs', help='where to write the drawn images')
    parser.add_argument('--device', default='cpu')
    add_precision_flags(parser)
    args = parser.parse_args()
    for path in (args.inputs, args.config, args.checkpoint):
        if not osp.exists(path):
            raise SystemExit(f'{path} does not exist')
    onnx = args.checkpoint.endswith('.onnx')
    if onnx and args.precision:
        raise SystemExit('--bf16/--fp16: an ONNX model runs in the precision it was exported in')
    checked_precision(args.precision, args.device)  # before minutes of building and loading
    weights = None if onnx else args.checkpoint
    retain_freed_memory()  # freed activations stay for the next image (convmlp_mm/utils/allocator.py)

    def precision(model):
        return mixed_precision(model, args.precision) if args.precision else contextlib.nullcontext()

    scope = Config.fromfile(args.config).get('default_scope')
    if scope == 'mmdet':
        from mmdet.apis import DetInferencer
        inferencer = DetInferencer(model=args.config, weights=weights, device=args.device, show_progress=False)
        if onnx:
            run_with_onnxruntime(inferencer, args.checkpoint)
        with precision(inferencer.model):
            inferencer(args.inputs, out_dir=args.out_dir)
    elif scope == 'mmseg':
        from mmseg.apis import MMSegInferencer
        inferencer = MMSegInferencer(model=args.config, weights=weights, device=args.device)
        if onnx:
            run_with_onnxruntime(inferencer, args.checkpoint)
        with precision(inferencer.model):
            inferencer(args.inputs, out_dir=args.out_dir)
    elif scope == 'mmpretrain':
        from mmpretrain.apis import ImageClassificationInferencer
        from mmpretrain.utils import progress
        progress.disable_progress_bar = True  # its live display would garble the lines printed below
        inferencer = ImageClassificationInferencer(model=args.config, pretrained=weights or False,
                                                   device=args.device)
        if onnx:
            run_with_onnxruntime(inferencer, args.checkpoint)
            inferencer.classes = inferencer.model.dataset_meta.get('classes')
        os.makedirs(osp.join(args.out_dir, 'vis'), exist_ok=True)  # mmpretrain makes only the last level
        with precision(inferencer.model):
            results = inferencer(args.inputs, show_dir=osp.join(args.out_dir, 'vis'))
        classes = inferencer.classes or [str(i) for i in range(len(results[0]['pred_scores']))]
        for index, result in enumerate(results):
            top = np.argsort(result['pred_scores'])[::-1][:5]
            print(f'image {index}: ' + ', '.join(f'{classes[i]} {result["pred_scores"][i]:.3f}' for i in top))
    else:
        raise SystemExit(f"{args.config}: default_scope {scope!r} is none of 'mmdet', 'mmseg', 'mmpretrain'")
    print(f'wrote the images with predictions under {osp.join(args.out_dir, "vis")}')


if __name__ == '__main__':
    run_main(main)
