"""Regenerate docs/model_zoo.md's model-zoo tables and the accuracy/cost plot from model-index.yml and measurements.

    python tools/misc/model_zoo.py                 # measure, rewrite the tables, draw docs/model_zoo.png
    python tools/misc/model_zoo.py --no-speed      # params and GMACs only (fast); speed cells read "–"
    python tools/misc/model_zoo.py --doc OTHER.md  # rewrite the tables of another copy of the page

The tables sit between ``<!-- model-zoo:NAME -->`` and ``<!-- /model-zoo:NAME -->`` markers of the page (NAME:
note, det, seg, in1k, finetune); the rest of the page is left as it is.

Results (accuracy) come from the metafiles; parameters, GMACs and images/s are measured here, on this
machine, in one run: batch 1, fp32, eval mode, the ``:fast`` variant (channels-last, BN/LayerNorm folded).
Detectors and segmentors are measured as backbone + neck at their test size (the part that depends on the
backbone). ResNet-18/50 classifiers from mmpretrain's configs are measured in the same run for the plot;
their accuracy is read from mmpretrain's own metafile.
"""
import argparse
import os
import re
from datetime import date
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch
import yaml

from convmlp_mm.utils.benchmark import build_target, count_macs, describe_device, make_step, median_time

ROOT = Path(__file__).resolve().parents[2]
# Task -> (input size for MACs and speed, what the size means in the table header).
SIZES = {'det': ((800, 1333), '800x1333, backbone+FPN'), 'seg': ((512, 512), '512x512, backbone+FPN'),
         'in1k': ((224, 224), '224'), 'finetune': (None, None)}  # the fine-tuning table shows params only
PEERS = {'ResNet-18': 'resnet/resnet18_8xb32_in1k.py', 'ResNet-50': 'resnet/resnet50_8xb32_in1k.py'}


def metafile_models() -> List[dict]:
    index = yaml.safe_load((ROOT / 'model-index.yml').read_text())
    return [m for f in index['Import'] for m in yaml.safe_load((ROOT / f).read_text())['Models']]


def task_of(model: dict) -> str:
    config = model['Config']
    if config.startswith('configs/detection/'):
        return 'det'
    if config.startswith('configs/segmentation/'):
        return 'seg'
    return 'in1k' if config.endswith('_in1k.py') else 'finetune'


def measure(config: str, size: Optional[Tuple[int, int]], speed: bool) -> Tuple[int, Optional[int], Optional[float]]:
    """(parameters of the full model, MACs of the measured part at ``size``, images/s); a table without
    those columns passes ``size=None`` / ``speed=False`` and gets None for them."""
    plain = build_target(config, 'infer')
    params = sum(p.numel() for p in plain.model.parameters())  # the whole classifier/detector/segmentor
    if size is None:
        return params, None, None
    macs = count_macs(plain, size)
    if not speed:
        return params, macs, None
    latency = median_time(make_step(build_target(f'{config}:fast', 'infer'), torch.randn(1, 3, *size), 'infer'),
                          'cpu', warmup=2, repeats=5)
    return params, macs, 1 / latency


def link(config: str, base: Path) -> str:
    """A markdown link to ``config`` (relative to the repository) from a page in the folder ``base``."""
    return f'[{Path(config).name}]({Path(os.path.relpath(ROOT / config, base)).as_posix()})'


def link_base(doc: Path) -> Path:
    """The folder the page's links are relative to: its own folder inside the repository; a copy outside it
    (a scratch copy, as tests/test_configs/test_metafile.py makes) gets the links of docs/, where the page lives."""
    folder = doc.resolve().parent
    return folder if folder == ROOT or ROOT in folder.parents else ROOT / 'docs'


def speed_cell(ips: Optional[float]) -> str:
    return '–' if ips is None else f'{ips:.1f}'


def tables(rows: Dict[str, List[Tuple[dict, Tuple[int, int, Optional[float]]]]], base: Path) -> Dict[str, str]:
    """Markdown for each task's table, its config links relative to the folder ``base``."""
    def metric(model: dict, key: str) -> str:
        values = [r['Metrics'][key] for r in model['Results'] if key in r['Metrics']]
        return str(values[0]) if values else '–'

    out = {}
    lines = [f'| model | backbone | params | GMACs ({SIZES["det"][1]}) | box AP | mask AP | images/s | config '
             '| weights |',
             '| --- | --- | --- | --- | --- | --- | --- | --- | --- |']
    for model, (params, macs, ips) in rows['det']:
        detector = 'RetinaNet' if 'retinanet' in model['Name'] else 'Mask R-CNN'
        lines.append(f'| {detector} | {backbone_name(model)} | {params / 1e6:.1f}M | {macs / 1e9:.1f} '
                     f'| {metric(model, "box AP")} | {metric(model, "mask AP")} | {speed_cell(ips)} '
                     f'| {link(model["Config"], base)} | {weights(model)} |')
    out['det'] = '\n'.join(lines)
    lines = [f'| model | backbone | params | GMACs ({SIZES["seg"][1]}) | mIoU | images/s | config | weights |',
             '| --- | --- | --- | --- | --- | --- | --- | --- |']
    for model, (params, macs, ips) in rows['seg']:
        lines.append(f'| Semantic FPN | {backbone_name(model)} | {params / 1e6:.1f}M | {macs / 1e9:.1f} '
                     f'| {metric(model, "mIoU")} | {speed_cell(ips)} | {link(model["Config"], base)} '
                     f'| {weights(model)} |')
    out['seg'] = '\n'.join(lines)
    lines = ['| model | params | GMACs @224 | top-1 | images/s | config | weights |',
             '| --- | --- | --- | --- | --- | --- | --- |']
    for model, (params, macs, ips) in rows['in1k']:
        lines.append(f'| {backbone_name(model)} | {params / 1e6:.1f}M | {macs / 1e9:.1f} '
                     f'| {metric(model, "Top 1 Accuracy")} | {speed_cell(ips)} | {link(model["Config"], base)} '
                     f'| {weights(model)} |')
    out['in1k'] = '\n'.join(lines)
    lines = ['| model | dataset | params | top-1 | config | weights |', '| --- | --- | --- | --- | --- | --- |']
    for model, (params, _, _) in rows['finetune']:
        lines.append(f'| {backbone_name(model)} | {model["Results"][0]["Dataset"]} | {params / 1e6:.1f}M '
                     f'| {metric(model, "Top 1 Accuracy")} | {link(model["Config"], base)} | {weights(model)} |')
    out['finetune'] = '\n'.join(lines)
    return out


def weights(model: dict) -> str:
    """The official trained checkpoint of the row's model, as a link."""
    return f'[official]({model["Weights"]})'


def backbone_name(model: dict) -> str:
    arch = re.search(r'convmlp[-_]([sml])', model['Name']).group(1)
    return f'ConvMLP-{arch.upper()}'


def replace_block(text: str, name: str, body: str, where: str = 'the page') -> str:
    start, end = f'<!-- model-zoo:{name} -->', f'<!-- /model-zoo:{name} -->'
    pattern = re.compile(re.escape(start) + '.*?' + re.escape(end), re.S)
    if not pattern.search(text):
        raise SystemExit(f'{where} has no {start} ... {end} block to fill')
    return pattern.sub(lambda _: f'{start}\n{body}\n{end}', text)


def plot(points: List[Tuple[str, float, float, Optional[float]]], path: Path, device: str) -> None:
    """Top-1 against GMACs and against measured images/s, ConvMLP and the ResNet peers."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    panels = [(1, 'GMACs at 224x224')] + ([(3, f'images/s ({device}, batch 1)')] if points[0][3] else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2), squeeze=False)
    for ax, (index, label) in zip(axes[0], panels):
        for group, colour in (('ConvMLP', 'tab:red'), ('ResNet', 'tab:blue')):
            chosen = [p for p in points if p[0].startswith(group)]
            ax.plot([p[index] for p in chosen], [p[2] for p in chosen], 'o-', color=colour, label=group)
            for p in chosen:
                ax.annotate(p[0], (p[index], p[2]), textcoords='offset points', xytext=(5, -12), fontsize=8)
        ax.set_xlabel(label)
        ax.set_ylabel('ImageNet-1k top-1 (%)')
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle('ConvMLP vs ResNet: accuracy (papers/metafiles) against cost (measured in one run)')
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def peer_points(speed: bool) -> List[Tuple[str, float, float, Optional[float]]]:
    import mmpretrain
    mim = Path(mmpretrain.__file__).parent / '.mim' / 'configs'
    metafile = yaml.safe_load((mim / 'resnet' / 'metafile.yml').read_text())['Models']
    points = []
    for name, config in PEERS.items():
        entry = next(m for m in metafile if m['Config'].endswith(config))
        _, macs, ips = measure(str(mim / config), (224, 224), speed)
        points.append((name, macs / 1e9, entry['Results'][0]['Metrics']['Top 1 Accuracy'], ips))
    return points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--no-speed', action='store_true', help='skip the images/s measurements')
    parser.add_argument('--doc', type=Path, default=ROOT / 'docs' / 'model_zoo.md',
                        help='the page whose tables to rewrite (default: docs/model_zoo.md)')
    parser.add_argument('--plot', type=Path, default=ROOT / 'docs' / 'model_zoo.png', help='where to draw the plot')
    args = parser.parse_args()
    speed = not args.no_speed
    rows: Dict[str, list] = {task: [] for task in SIZES}
    for model in metafile_models():
        task = task_of(model)
        size = SIZES[task][0]
        rows[task].append((model, measure(str(ROOT / model['Config']), size, speed)))
        print(f'measured {model["Name"]}', flush=True)
    device = describe_device('cpu')
    text = args.doc.read_text()
    for task, body in tables(rows, link_base(args.doc)).items():
        text = replace_block(text, task, body, str(args.doc))
    if speed:
        text = replace_block(text, 'note', f'Speed: images/s at batch 1, fp32, eval, fast path, on {device} '
                             f'(torch {torch.__version__}), measured by `python tools/misc/model_zoo.py` on '
                             f'{date.today().isoformat()}.', str(args.doc))
    args.doc.write_text(text)
    points = [(backbone_name(m), macs / 1e9, float(next(iter(m['Results'][0]['Metrics'].values()))), ips)
              for m, (_, macs, ips) in rows['in1k']]
    plot(points + peer_points(speed), args.plot, device)
    print(f'rewrote the model-zoo tables in {args.doc} and drew {args.plot}')


if __name__ == '__main__':
    main()
