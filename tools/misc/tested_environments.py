"""The "Tested environments" table of docs/get_started.md, from the test matrix's results.

    make test test-matrix        # writes work_dirs/matrix/<stack>.xml (pytest's JUnit report) per stack
    python tools/misc/tested_environments.py [work_dirs/matrix]   # print the table, rewrite the page's
    python tools/misc/tested_environments.py --print-only         # print the table only
    python tools/misc/tested_environments.py --doc OTHER.md       # rewrite another copy of the page

For each stack whose report is there, the versions are read from that stack's virtual environment (.venv for
pinned, .venv-<stack> for the others) and the outcome from its report. The table sits between the
``<!-- tested-environments -->`` and ``<!-- /tested-environments -->`` markers of the page, as the model-zoo
tables of docs/model_zoo.md do (tools/misc/model_zoo.py); the rest of the page is left as it is.
"""
import argparse
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STACKS = ('pinned', 'legacy', 'onedl', 'newest')
DOC = ROOT / 'docs' / 'get_started.md'
START, END = '<!-- tested-environments -->', '<!-- /tested-environments -->'
VERSIONS = '''
import json, platform, importlib.metadata as md
import torch, numpy, mmcv, mmengine, mmdet, mmseg, mmpretrain
def dist(*names):
    for name in names:
        try:
            return name + " " + md.version(name)
        except md.PackageNotFoundError:
            pass
print(json.dumps(dict(python=platform.python_version(), torch=torch.__version__, numpy=numpy.__version__,
    mmcv=dist("mmcv", "onedl-mmcv"), mmengine=dist("mmengine", "onedl-mmengine"),
    mmdet=dist("mmdet", "onedl-mmdetection"), mmseg=dist("mmsegmentation", "onedl-mmsegmentation"),
    mmpretrain=dist("mmpretrain", "onedl-mmpretrain"))))
'''


def venv_python(stack: str) -> Path:
    return ROOT / ('.venv' if stack == 'pinned' else f'.venv-{stack}') / 'bin' / 'python'


def outcome(report: Path) -> str:
    suite = ET.parse(report).getroot()
    suite = suite if suite.tag == 'testsuite' else suite.find('testsuite')
    total, failures, errors, skipped = (int(suite.get(k, 0)) for k in ('tests', 'failures', 'errors', 'skipped'))
    passed = total - failures - errors - skipped
    return f'{passed} passed, {failures + errors} failed' + (f', {skipped} skipped' if skipped else '')


def table(folder: Path) -> str:
    lines = ['| stack | python | torch | numpy | mmcv (with ops) | mmengine | mmdet | mmseg | mmpretrain | tests |',
             '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |']
    for stack in STACKS:
        report = folder / f'{stack}.xml'
        if not report.is_file():
            continue
        versions = json.loads(subprocess.run([str(venv_python(stack)), '-c', VERSIONS], check=True,
                                             capture_output=True, text=True).stdout)
        subset = 'whole suite' if stack == 'pinned' else '`-m matrix`'
        lines.append(f'| {stack} | ' + ' | '.join(str(versions[k]) for k in
                                                   ('python', 'torch', 'numpy', 'mmcv', 'mmengine', 'mmdet', 'mmseg',
                                                    'mmpretrain')) + f' | {outcome(report)} ({subset}) |')
    return '\n'.join(lines)


def replace_block(text: str, body: str, where: str) -> str:
    """``text`` with what stands between the markers replaced by ``body``."""
    pattern = re.compile(re.escape(START) + '.*?' + re.escape(END), re.S)
    if not pattern.search(text):
        sys.exit(f'error: {where} has no {START} ... {END} block to fill')
    return pattern.sub(lambda _: f'{START}\n{body}\n{END}', text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('folder', nargs='?', default=str(ROOT / 'work_dirs' / 'matrix'))
    parser.add_argument('--doc', type=Path, default=DOC,
                        help='the page whose table to rewrite (default: docs/get_started.md)')
    parser.add_argument('--print-only', action='store_true', help='print the table, rewrite no page')
    args = parser.parse_args()
    folder = Path(args.folder)
    if not any((folder / f'{s}.xml').is_file() for s in STACKS):
        sys.exit(f'error: no test reports in {folder}; run `make test test-matrix` first')
    body = table(folder)
    print(body)
    if not args.print_only:
        args.doc.write_text(replace_block(args.doc.read_text(), body, str(args.doc)))
        print(f'rewrote the table in {args.doc}', file=sys.stderr)


if __name__ == '__main__':
    main()
