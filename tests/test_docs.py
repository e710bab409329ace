"""The documentation holds together: README.md and every page of docs/ link only to files and headings that
exist, name only repository paths that exist (so that a moved tool or config is caught), and the pages the
package's messages point users to exist with those headings. The README stays a front page."""
import functools
import re
from collections import Counter
from pathlib import Path
from typing import FrozenSet, Iterator, List, Tuple

import pytest

from .conftest import ROOT

PAGES = [ROOT / 'README.md', *sorted((ROOT / 'docs').glob('*.md'))]
README_MAX_LINES = 230
# Repository paths in code (backticks or code blocks) that must exist ...
PATH_ROOTS = ('tools', 'configs', 'convmlp_mm', 'tests', 'docs', 'requirements')
PATH = re.compile(r'(?<![\w./-])((?:%s)/[^\s`\'"()|,;:]*)' % '|'.join(PATH_ROOTS))
# ... unless they are placeholders or what a run writes (a wheel's convmlp_mm/.mim/ included).
PLACEHOLDERS = ('{', '<', '*', 'W/', 'OUT')
OUTPUT_DIRS = {'work_dirs', 'data', 'checkpoints', '.mim'}
LINK = re.compile(r'!?\[[^\]]*\]\(\s*([^)\s]+)(?:\s+"[^"]*")?\s*\)')
FENCE = re.compile(r'^\s*(```|~~~)')
HEADING = re.compile(r'^(#{1,6})\s+(.*?)\s*#*\s*$')
INLINE_CODE = re.compile(r'(`+)(.+?)\1')


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def split(text: str) -> Tuple[List[str], List[str]]:
    """(prose lines, lines of fenced code blocks) of a markdown text."""
    prose, code, fenced = [], [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif fenced:
            code.append(line)
        else:
            prose.append(line)
    return prose, code


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: links and images by their text, inline-code marks dropped, lower case,
    every character that is not a letter, digit, underscore, hyphen or space removed, spaces as hyphens."""
    text = re.sub(r'!?\[([^\]]*)\]\([^)]*\)', r'\1', heading)
    text = re.sub(r'<[^>]+>', '', text).replace('`', '').strip().lower()
    return re.sub(r'[^\w\- ]', '', text).replace(' ', '-')


@functools.lru_cache(maxsize=None)
def anchors(page: Path) -> FrozenSet[str]:
    """The anchors of a page's headings; a repeated heading gets -1, -2, ... as on GitHub."""
    seen: Counter = Counter()
    found = set()
    for line in split(page.read_text())[0]:
        match = HEADING.match(line)
        if match:
            base = slug(match.group(2))
            found.add(base if not seen[base] else f'{base}-{seen[base]}')
            seen[base] += 1
    return frozenset(found)


def links(page: Path) -> Iterator[str]:
    """The targets of a page's markdown links and images, outside code."""
    for line in split(page.read_text())[0]:
        yield from LINK.findall(INLINE_CODE.sub('', line))


def code_paths(page: Path) -> Iterator[str]:
    """The repository paths a page names in inline code or code blocks, placeholders and outputs left out."""
    prose, code = split(page.read_text())
    snippets = code + [span for line in prose for _, span in INLINE_CODE.findall(line)]
    for snippet in snippets:
        for path in PATH.findall(snippet):
            path = path.rstrip('.')
            if any(p in path for p in PLACEHOLDERS) or OUTPUT_DIRS & set(path.split('/')):
                continue
            yield path


def link_problem(page: Path, target: str) -> str:
    """What is wrong with the link ``target`` on ``page`` ('' if nothing)."""
    if re.match(r'[a-zA-Z][a-zA-Z0-9+.-]*:', target):  # http(s), mailto: not checked here
        return ''
    path, _, anchor = target.partition('#')
    file = (page.parent / path).resolve() if path else page
    if not file.exists():
        return f'{target}: no file {file}'
    if anchor and file.suffix == '.md' and anchor not in anchors(file):
        return f'{target}: {file.name} has no heading with anchor #{anchor}'
    return ''


def test_slug_is_githubs():
    assert slug('Official weights → OpenMMLab checkpoints') == 'official-weights--openmmlab-checkpoints'
    assert slug('A fresh environment: `tools/setup_env.sh`') == 'a-fresh-environment-toolssetup_envsh'
    assert slug('On a CUDA GPU: the prepared check') == 'on-a-cuda-gpu-the-prepared-check'
    assert slug('Checkpoints that hold other objects') == 'checkpoints-that-hold-other-objects'


def test_checker_catches_broken_links_and_paths(tmp_path):
    (tmp_path / 'other.md').write_text('# Other page\n\n```bash\n# not a heading\n```\n')
    page = tmp_path / 'page.md'
    page.write_text('# Page\n')
    assert link_problem(page, 'other.md#other-page') == '' and link_problem(page, '#page') == ''
    assert link_problem(page, 'https://example.com/x.md') == ''
    assert 'no file' in link_problem(page, 'missing.md')
    assert 'no heading' in link_problem(page, 'other.md#not-a-heading')
    page.write_text('`tools/moved.py`, `configs/{a,b}.py`, `work_dirs/x/`, not code: tools/prose.py\n'
                    '```\npython tools/train.py configs/x.py W/epoch_1.pth --cfg-options a=/p/configs/y.py\n```\n')
    assert list(code_paths(page)) == ['tools/train.py', 'configs/x.py', 'tools/moved.py']


@pytest.mark.parametrize('page', PAGES, ids=rel)
def test_links_resolve(page):
    problems = [p for p in (link_problem(page, t) for t in links(page)) if p]
    assert not problems, f'{rel(page)}: broken links:\n' + '\n'.join(problems)


@pytest.mark.parametrize('page', PAGES, ids=rel)
def test_named_paths_exist(page):
    missing = sorted({p for p in code_paths(page) if not (ROOT / p).exists()})
    assert not missing, f'{rel(page)} names paths that do not exist: {missing}'


def test_package_points_to_existing_docs():
    from convmlp_mm.checkpoint_safety import RESAVE_DOCS
    from convmlp_mm.utils.data_check import DATASET_HINTS
    targets = [RESAVE_DOCS] + [docs for _, docs, _ in DATASET_HINTS.values()]
    problems = [p for p in (link_problem(ROOT / 'README.md', t) for t in targets) if p]
    assert all('#' in t for t in targets) and not problems, problems


def test_readme_is_a_front_page():
    lines = len((ROOT / 'README.md').read_text().splitlines())
    assert lines <= README_MAX_LINES, f'README.md has {lines} lines; move detail into docs/'
