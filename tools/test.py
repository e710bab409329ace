"""Evaluate a checkpoint on a config's test set (MMDetection / MMSegmentation / MMPretrain).

    python tools/test.py CONFIG CHECKPOINT [--work-dir W] [--out results.pkl] [--show-dir vis/]
        [--bf16 | --fp16] [--cfg-options k=v ...] [--launcher pytorch]

Metrics are printed and written to ``<work_dir>/<timestamp>/<timestamp>.json``. The ConvMLP backbone runs
its inference form in testing (``fast_inference``: BatchNorms folded on the fly, fused CPU kernels;
``--cfg-options model.backbone.fast_inference=False`` turns it off). ``--bf16``/``--fp16`` run the network
in reduced precision, where the device has it natively. The C library keeps freed memory for the next batch
(``convmlp_mm/utils/allocator.py``: on glibc, unless the environment sets its ``MALLOC_*`` variables).
"""
import argparse
import os

from mmengine.config import DictAction
from mmengine.runner import Runner

from convmlp_mm.utils.allocator import retain_freed_memory
from convmlp_mm.utils.cli import (
    add_precision_flags,
    enable_visualization,
    prepare_cpu_distributed,
    results_dumper,
    run_main,
    test_config,
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and evaluate) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save the evaluation metrics')
    parser.add_argument('--out', help='dump the predictions to this pickle file')
    parser.add_argument('--show', action='store_true', help='show the predictions in a window')
    parser.add_argument('--show-dir', help='write images with the predictions drawn to this folder')
    parser.add_argument('--wait-time', type=float, default=2, help='seconds between shown images')
    add_precision_flags(parser)
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config, xxx=yyy format, e.g. test_dataloader.batch_size=2')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main() -> None:
    args = parse_args()
    retain_freed_memory()
    cfg = test_config(args.config, args.checkpoint, args.cfg_options, args.work_dir, args.precision)
    cfg.launcher = args.launcher
    if args.show or args.show_dir:
        enable_visualization(cfg, args.show_dir, args.show, args.wait_time)
    prepare_cpu_distributed(cfg)
    runner = Runner.from_cfg(cfg)
    if args.out:
        runner.test_evaluator.metrics.append(results_dumper(cfg, args.out))
    runner.test()


if __name__ == '__main__':
    run_main(main)
