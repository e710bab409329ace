"""Convert an official ConvMLP classifier checkpoint into OpenMMLab checkpoints.

    python tools/model_converters/convert_official.py convmlp_s_imagenet.pth OUT_DIR
    python tools/model_converters/convert_official.py convmlp_s_cifar10.pth OUT_DIR
    python tools/model_converters/convert_official.py output/train/last.pth OUT_DIR [--ema]  # timm training checkpoint

writes an mmpretrain classifier checkpoint named after the data set its head was trained on
(OUT_DIR/convmlp_s_in1k.pth for configs/classification/convmlp_s_in1k.py, convmlp_s_cifar10.pth for
convmlp_s_cifar10.py, ...) and, for ImageNet weights, OUT_DIR/convmlp_s_backbone.pth (backbone only, for the
detection/segmentation configs' init_cfg). A head of another size is converted too, with a note on the
num_classes to set. Files that are not official ConvMLP checkpoints are refused. The input may be a path or a URL.
"""
import argparse
import os
import os.path as osp

import torch

from convmlp_mm.models.official import dataset_of, detect_arch, read_official, to_backbone, to_classifier
from convmlp_mm.utils.cli import run_main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('checkpoint', help='an official convmlp_{s,m,l}_*.pth or a timm training checkpoint '
                                           '(path or URL)')
    parser.add_argument('out_dir', help='folder for the converted files')
    parser.add_argument('--ema', action='store_true',
                        help='from a timm training checkpoint, convert the EMA weights (state_dict_ema)')
    args = parser.parse_args()
    state_dict, source = read_official(args.checkpoint, ema=args.ema)
    arch = detect_arch(state_dict, name=args.checkpoint)
    num_classes, dataset, dataset_name = dataset_of(state_dict)
    params = sum(v.numel() for k, v in state_dict.items() if 'num_batches_tracked' not in k)
    print(f'{args.checkpoint}: ConvMLP-{arch.upper()} classifier, {num_classes} classes '
          f'({dataset_name or "none of the paper data sets"}), {params / 1e6:.2f}M parameters; {source}')
    if dataset is None:
        name, target = f'convmlp_{arch}_{num_classes}cls.pth', None
        print(f'note: no config here has a {num_classes}-class head. Start from a config of ConvMLP-'
              f'{arch.upper()} (configs/classification/convmlp_{arch}_*.py) and set '
              f'model.head.num_classes={num_classes} and data_preprocessor.num_classes={num_classes}.')
    else:
        name, target = f'convmlp_{arch}_{dataset}.pth', f'configs/classification/convmlp_{arch}_{dataset}.py'
    outputs = {name: (to_classifier(state_dict), 'mmpretrain classifier' + (f' for {target}' if target else ''))}
    if dataset == 'in1k':
        outputs[f'convmlp_{arch}_backbone.pth'] = (
            to_backbone(state_dict), 'backbone only, for init_cfg of the detection/segmentation configs')
    os.makedirs(args.out_dir, exist_ok=True)
    meta = dict(arch=arch, num_classes=num_classes, source=osp.basename(args.checkpoint))
    for file_name, (converted, what) in outputs.items():
        path = osp.join(args.out_dir, file_name)
        torch.save(dict(meta=meta, state_dict=converted), path)
        print(f'wrote {path}  <- {what}')


if __name__ == '__main__':
    run_main(main)
