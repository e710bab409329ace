"""Convert an official ConvMLP ImageNet checkpoint into OpenMMLab checkpoints.

    python tools/convert_official.py convmlp_s_imagenet.pth OUT_DIR

writes OUT_DIR/convmlp_s_in1k.pth (an mmpretrain classifier checkpoint for
configs/classification/convmlp_s_in1k.py) and OUT_DIR/convmlp_s_backbone.pth (backbone only, for the
detection/segmentation configs' init_cfg), and says which variant the file is. Files that are not
official ConvMLP checkpoints are refused. The input may be a path or a URL.
"""
import argparse
import os
import os.path as osp

import torch

from convmlp_mm.models.official import detect_arch, to_backbone, to_classifier
from convmlp_mm.models.pretrained import read_state_dict
from convmlp_mm.utils.cli import run_main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('checkpoint', help='official convmlp_{s,m,l}_imagenet.pth (path or URL)')
    parser.add_argument('out_dir', help='folder for the converted files')
    args = parser.parse_args()
    state_dict = read_state_dict(args.checkpoint)
    arch = detect_arch(state_dict, name=args.checkpoint)
    params = sum(v.numel() for k, v in state_dict.items() if 'num_batches_tracked' not in k)
    print(f'{args.checkpoint}: ConvMLP-{arch.upper()} ImageNet classifier ({params / 1e6:.2f}M parameters)')
    os.makedirs(args.out_dir, exist_ok=True)
    meta = dict(arch=arch, source=osp.basename(args.checkpoint))
    outputs = {f'convmlp_{arch}_in1k.pth': to_classifier(state_dict),
               f'convmlp_{arch}_backbone.pth': to_backbone(state_dict)}
    for name, converted in outputs.items():
        path = osp.join(args.out_dir, name)
        torch.save(dict(meta=meta, state_dict=converted), path)
        print(f'wrote {path}')


if __name__ == '__main__':
    run_main(main)
