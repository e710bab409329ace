"""Measure models side by side in one run: params, GMACs, latency, images/s, peak and held memory, % of matmul rate.

    # plain vs fast ConvMLP-S, inference at 224 and training steps at a detection size
    python tools/analysis_tools/benchmark.py convmlp-s:plain convmlp-s:fast convmlp-s:compile --size 224 --batch 16
    python tools/analysis_tools/benchmark.py convmlp-s:plain convmlp-s:fast --mode train --size 800 1333 --batch 1
    # fp32 against bf16 (CPUs with avx512_bf16 or AMX, GPUs from sm80)
    python tools/analysis_tools/benchmark.py convmlp-s:fast convmlp-s:bf16 --size 224 --batch 8
    # ours against the runtimes users pick instead, on the same weights (CPU inference)
    python tools/analysis_tools/benchmark.py convmlp-s convmlp-s:fast convmlp-s:ort convmlp-s:openvino \
        convmlp-s:inductor convmlp-s:bf16 convmlp-s:openvino-bf16 convmlp-s:inductor-bf16 --size 800 1333
    # ConvMLP against peers from the installed libraries
    python tools/analysis_tools/benchmark.py convmlp-s convmlp-m convmlp-l resnet18 resnet50 swin-t pvt-t \
        --baseline resnet50
    # a whole config (classifier: to logits; detector/segmentor: backbone + neck)
    python tools/analysis_tools/benchmark.py configs/detection/retinanet_convmlp_s_fpn.py --size 800 1333

Targets, variants (``:plain``, ``:fast``, ``:bf16``, ``:compile``, ``:cp``; the other runtimes ``:ort``, ``:openvino``,
``:inductor`` and their bf16 forms) and how memory is measured are described in ``convmlp_mm/utils/benchmark.py``.
The last column is each target's images/s over the baseline's (the first target unless ``--baseline`` names
another), measured in this run.
"""
import argparse

import torch

from convmlp_mm.utils.allocator import retain_freed_memory
from convmlp_mm.utils.benchmark import MODES, PEERS, VARIANTS, describe_device, format_table, run
from convmlp_mm.utils.cli import run_main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('targets', nargs='+',
                        help=f'config files or backbones {sorted(PEERS)}, optionally with :{"/:".join(VARIANTS)}')
    parser.add_argument('--size', type=int, nargs='+', default=[224], help='input H [W] (default: 224)')
    parser.add_argument('--batch', type=int, default=1, help='images per step (default: 1)')
    parser.add_argument('--mode', choices=MODES, default='infer',
                        help='infer: forward without grad; train: forward + backward (default: infer)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--warmup', type=int, default=2, help='untimed steps first (default: 2)')
    parser.add_argument('--repeats', type=int, default=5, help='timed steps; the median is shown (default: 5)')
    parser.add_argument('--baseline', help='target the speed ratios are relative to (default: the first)')
    args = parser.parse_args()
    if len(args.size) > 2:
        parser.error(f'--size takes H or H W, got {args.size}')
    if args.baseline and args.baseline not in args.targets:
        parser.error(f'--baseline {args.baseline!r} is not one of the targets {args.targets}')
    return args


def main() -> None:
    args = parse_args()
    size = (args.size[0], args.size[-1])
    allocator = retain_freed_memory()  # as the inference tools run, for every target alike
    try:
        rates, results = run(args.targets, size, batch=args.batch, mode=args.mode, device=args.device,
                             warmup=args.warmup, repeats=args.repeats)
    except (ValueError, FileNotFoundError, ImportError) as err:
        raise SystemExit(f'error: {err}')
    rate_text = ', '.join(f'{name} {rate:.1f}' for name, rate in rates.items())
    print(f'device: {describe_device(args.device)}, torch {torch.__version__}; matmul rate (GFLOP/s) '
          f'{rate_text} (the better of a reading before and after); mode {args.mode}; '
          f'input {args.batch}x3x{size[0]}x{size[1]}; '
          f'median of {args.repeats} after {args.warmup} warm-up steps; {allocator}')
    print(format_table(results, args.baseline))


if __name__ == '__main__':
    run_main(main)
