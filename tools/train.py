"""Train a detector, segmentor or classifier from a config (MMDetection / MMSegmentation / MMPretrain).

    python tools/train.py configs/detection/retinanet_convmlp_s_fpn.py [--work-dir W] [--resume [CKPT]]
        [--amp [--amp-dtype bfloat16|float16]] [--auto-scale-lr] [--tensorboard] [--cfg-options k=v ...]
        [--launcher pytorch]

The config's ``default_scope`` picks the library; mmengine's Runner does the rest. The training guards
(atomic checkpoints, random state in checkpoints, stop on a NaN/inf loss) come with the configs (their
``_base_/default_runtime.py``), so mmdet's/mmseg's/mmpretrain's own train.py get them too. What this tool
adds: ``--resume`` without a path skips a truncated newest checkpoint, clear errors for missing data, and
CPU-only distributed runs. ``--cfg-options compile=True`` runs the training step under ``torch.compile``
(mmengine's Runner reads ``compile``).
"""
import argparse
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

from convmlp_mm.utils.cli import (
    add_tensorboard,
    amp_optim_wrapper,
    default_work_dir,
    prepare_cpu_distributed,
    resume_checkpoint,
    run_main,
)
from convmlp_mm.utils.data_check import check_dataset_paths


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--amp', action='store_true',
                        help='mixed-precision training: fp16 with loss scaling on CUDA GPUs, bf16 on CPUs with '
                             'avx512_bf16 or AMX')
    parser.add_argument('--amp-dtype', choices=['bfloat16', 'float16'],
                        help='with --amp: the reduced dtype (default: float16 on GPUs, bfloat16 on CPUs)')
    parser.add_argument('--tensorboard', action='store_true',
                        help='also log to TensorBoard (<work_dir>/<timestamp>/vis_data/): tensorboard --logdir W')
    parser.add_argument('--auto-scale-lr', action='store_true', help='scale the lr by the total batch size')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from this checkpoint, or, given without a path, from the latest one in the work dir')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config, xxx=yyy format, e.g. train_cfg.max_epochs=24')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main() -> None:
    args = parse_args()
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or default_work_dir(args.config)
    if args.amp_dtype and not args.amp:
        raise SystemExit('--amp-dtype needs --amp')
    if args.amp:
        cfg.optim_wrapper = amp_optim_wrapper(cfg.optim_wrapper, args.amp_dtype)
    if args.tensorboard:
        add_tensorboard(cfg)
    if args.auto_scale_lr:
        if not cfg.get('auto_scale_lr', {}).get('base_batch_size'):
            raise SystemExit(f'--auto-scale-lr: {args.config} has no auto_scale_lr.base_batch_size to scale from')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.load_from = resume_checkpoint(cfg.work_dir)
        cfg.resume = cfg.load_from is not None  # nothing to resume: start from scratch
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise SystemExit(f'--resume {args.resume}: no such checkpoint file')
        cfg.resume, cfg.load_from = True, args.resume
    check_dataset_paths(cfg, ['train_dataloader', 'val_dataloader'])
    prepare_cpu_distributed(cfg)
    Runner.from_cfg(cfg).train()


if __name__ == '__main__':
    run_main(main)
