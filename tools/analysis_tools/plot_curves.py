"""Draw training curves (losses, learning rate, validation metrics) from a work dir's logs to a PNG.

    python tools/analysis_tools/plot_curves.py work_dirs/toy_retinanet_convmlp_s              # -> <work_dir>/curves.png
    python tools/analysis_tools/plot_curves.py WORK_DIR --keys loss coco/bbox_mAP --out curves.png

It reads ``vis_data/scalars.json``, which mmengine's LocalVisBackend writes for every run of every library
(one JSON object per logged step; training lines carry ``step``, validation lines carry the metrics).
When a work dir holds several runs (a resumed run, for example), they are joined in time order. Training
curves are drawn over iterations; validation curves over epochs in an epoch-based run (mmengine's LoggerHook
logs them by epoch there) and over iterations in an iteration-based one, and each panel's x axis says which.
mmdet's ``analyze_logs.py`` reads the same files but only epoch-based detection logs, so iteration-based
segmentation runs would not plot with it.
"""
import argparse
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Tuple

# Keys that are bookkeeping, not curves.
SKIP = {'step', 'epoch', 'iter', 'time', 'data_time', 'memory', 'eta'}
# Panels per row: a run logs up to a dozen curves (losses, lr, COCO's six mAPs), one row would be unreadable.
COLUMNS = 4


Series = Dict[str, List[Tuple[int, float]]]


def read_scalars(work_dir: Path) -> Tuple[Series, Series, str]:
    """(training series, validation series, what the validation steps count: 'epoch' or 'iteration'):
    name -> [(step, value)], from every run under ``work_dir``."""
    files = sorted(work_dir.glob('*/vis_data/scalars.json'))
    if not files:
        raise SystemExit(f'no */vis_data/scalars.json under {work_dir}: is it a work dir of a finished or '
                         f'running tools/train.py run?')
    train, val = defaultdict(dict), defaultdict(dict)
    epochs = set()  # training lines of an epoch-based run carry their epoch
    for path in files:  # timestamped folders sort in time order; a later run overrides repeated steps
        for line in path.read_text().splitlines():
            record = json.loads(line)
            step = record.get('step')
            if step is None:
                continue
            target = train if 'lr' in record or any(k.startswith('loss') for k in record) else val
            if target is train and 'epoch' in record:
                epochs.add(record['epoch'])
            for key, value in record.items():
                if key not in SKIP and isinstance(value, (int, float)):
                    target[key][step] = float(value)
    # Epoch-based runs log validation by epoch unless the config turned LoggerHook's log_metric_by_epoch off,
    # which shows as validation steps beyond the last epoch.
    val_steps = {step for points in val.values() for step in points}
    val_unit = 'epoch' if epochs and val_steps and max(val_steps) <= max(epochs) else 'iteration'
    return ({k: sorted(v.items()) for k, v in train.items()}, {k: sorted(v.items()) for k, v in val.items()},
            val_unit)


def is_defined(points: List[Tuple[int, float]]) -> bool:
    """Whether a metric ever had a value: COCO writes -1 for a metric with no ground truth to measure it
    on (``bbox_mAP_l`` on a set without large objects), and some metrics log NaN."""
    return any(value != -1 and not math.isnan(value) for _, value in points)


def plot(series: Series, units: Dict[str, str], out: Path, title: str) -> None:
    """One panel per series, its x axis labelled with ``units[name]`` ('iteration' or 'epoch')."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    columns = min(COLUMNS, len(series))
    rows = math.ceil(len(series) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.2 * rows + 0.4), squeeze=False)
    for ax in axes.flat[len(series):]:
        ax.set_visible(False)
    for ax, (name, points) in zip(axes.flat, series.items()):
        ax.plot([p[0] for p in points], [p[1] for p in points], marker='o' if len(points) < 30 else None)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel(units[name])
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('work_dir', type=Path)
    parser.add_argument('--keys', nargs='+', help='curves to draw (default: every loss, lr and validation metric)')
    parser.add_argument('--out', type=Path, help='PNG to write (default: <work_dir>/curves.png)')
    args = parser.parse_args()
    train, val, val_unit = read_scalars(args.work_dir)
    available = {**train, **val}
    if args.keys:
        unknown = [k for k in args.keys if k not in available]
        if unknown:
            raise SystemExit(f'no curve named {unknown} in {args.work_dir}; available: {sorted(available)}')
        chosen = {k: available[k] for k in args.keys}
    else:
        chosen = {k: v for k, v in train.items() if k.startswith('loss') or k == 'lr'}
        chosen.update({k: v for k, v in val.items() if is_defined(v)})
    units = {name: 'iteration' if name in train else val_unit for name in chosen}
    out = args.out or args.work_dir / 'curves.png'
    plot(chosen, units, out, str(args.work_dir))
    print(f'wrote {out} ({", ".join(chosen)}); x axis: {", ".join(f"{n}: {u}" for n, u in units.items())}')


if __name__ == '__main__':
    main()
