"""The GPU check's figures: rows per part, written as JSON after every row (a run cut short keeps what it
measured) and as one markdown table per part."""
import json
import math
import platform
import time
from pathlib import Path
from typing import Dict, List, Optional

import torch

#: Column order of each part's table (a row's other keys follow).
COLUMNS = {
    'roi_align': ['device', 'rois', 'max_abs_error', 'feature_scale', 'within_tolerance'],
    'train': ['task', 'backbone', 'precision', 'with_cp', 'input', 'step_s', 'images_per_s', 'peak_mb'],
    'infer': ['task', 'backbone', 'variant', 'input', 'images_per_s', 'boxes', 'masks', 'class_map',
              'within_tolerance'],
    'toy_amp': ['config', 'device', 'bbox_mAP', 'bar', 'passed', 'minutes', 'returncode'],
    'toy_precision': ['config', 'variant', 'images_per_s', 'bbox_mAP', 'delta', 'within_tolerance'],
}


class Report:
    """Rows of figures by part, with a time budget after which measurements are listed as skipped."""

    def __init__(self, out: Path, budget_s: float, device: str, dry_run: bool) -> None:
        self.out = out
        self.budget_s = budget_s
        self.start = time.monotonic()
        self.rows: Dict[str, List[dict]] = {part: [] for part in COLUMNS}
        name = torch.cuda.get_device_name() if device == 'cuda' else (platform.processor() or platform.machine())
        self.about = dict(device=device, device_name=name, torch=torch.__version__, dry_run=dry_run,
                          date=time.strftime('%Y-%m-%d'), cuda=torch.version.cuda)
        out.mkdir(parents=True, exist_ok=True)

    def time_left(self) -> bool:
        return time.monotonic() - self.start < self.budget_s

    def add(self, part: str, row: dict, skipped: Optional[str] = None) -> None:
        if part not in self.rows:
            raise ValueError(f'unknown part {part!r}; choose one of {sorted(self.rows)}')
        self.rows[part].append(dict(row, skipped=skipped) if skipped else dict(row))
        self.write()

    def write(self) -> None:
        (self.out / 'gpu_check.json').write_text(json.dumps(dict(about=self.about, rows=self.rows), indent=1,
                                                            default=str))
        (self.out / 'gpu_check.md').write_text(self.markdown())

    def markdown(self) -> str:
        about = self.about
        lines = [f'# GPU check: {about["device_name"]} ({about["device"]}), torch {about["torch"]}, '
                 f'{about["date"]}{", dry run (toy sizes)" if about["dry_run"] else ""}', '']
        for part, rows in self.rows.items():
            if not rows:
                continue
            columns = COLUMNS[part] + sorted({k for r in rows for k in r} - set(COLUMNS[part]) - {'skipped'})
            columns = [c for c in columns if any(c in r for r in rows)]
            columns += ['skipped'] * any('skipped' in r for r in rows)
            lines += [f'## {part}', '', '| ' + ' | '.join(columns) + ' |', '|' + ' --- |' * len(columns)]
            lines += ['| ' + ' | '.join(format_cell(row.get(c)) for c in columns) + ' |' for row in rows]
            lines.append('')
        return '\n'.join(lines)


def format_cell(value) -> str:
    if value is None:
        return ''
    if isinstance(value, bool):
        return 'yes' if value else 'no'
    if isinstance(value, float):
        if math.isnan(value):
            return 'n/a'
        if abs(value) < 1e-2 and value != 0:
            return f'{value:.3g}'
        return f'{value:.3f}' if abs(value) < 10 else f'{value:.1f}'
    return str(value)
