"""Evaluate a checkpoint on a config's test set (MMDetection / MMSegmentation / MMPretrain).

    python tools/test.py CONFIG CHECKPOINT [--work-dir W] [--out results.pkl] [--show-dir vis/]
        [--cfg-options k=v ...] [--launcher pytorch]

Metrics are printed and written to ``<work_dir>/<timestamp>/<timestamp>.json``.
"""
import argparse
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

from convmlp_mm.utils.cli import (default_work_dir, enable_visualization, prepare_cpu_distributed, results_dumper,
                                  run_main)
from convmlp_mm.utils.data_check import check_dataset_paths


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and evaluate) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save the evaluation metrics')
    parser.add_argument('--out', help='dump the predictions to this pickle file')
    parser.add_argument('--show', action='store_true', help='show the predictions in a window')
    parser.add_argument('--show-dir', help='write images with the predictions drawn to this folder')
    parser.add_argument('--wait-time', type=float, default=2, help='seconds between shown images')
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
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or default_work_dir(args.config)
    if not osp.isfile(args.checkpoint):
        raise SystemExit(f'checkpoint {args.checkpoint} does not exist')
    cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        enable_visualization(cfg, args.show_dir, args.show, args.wait_time)
    check_dataset_paths(cfg, ['test_dataloader'])
    prepare_cpu_distributed(cfg)
    runner = Runner.from_cfg(cfg)
    if args.out:
        runner.test_evaluator.metrics.append(results_dumper(cfg, args.out))
    runner.test()


if __name__ == '__main__':
    run_main(main)
