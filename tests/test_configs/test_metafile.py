"""model-index.yml / metafiles: every entry's config exists and builds with the listed parameter count,
and the model-zoo rows of docs/model_zoo.md show the same results."""
import os
import re

import pytest
import yaml

from convmlp_mm.apis import build_from_config

from ..conftest import ROOT

ZOO = ROOT / 'docs' / 'model_zoo.md'


def zoo_link(config: str) -> str:
    """How the model-zoo page links a config (relative to the repository): relative to docs/."""
    return os.path.relpath(ROOT / config, ZOO.parent).replace(os.sep, '/')


def metafile_models():
    index = yaml.safe_load((ROOT / 'model-index.yml').read_text())
    for metafile in index['Import']:
        for model in yaml.safe_load((ROOT / metafile).read_text())['Models']:
            yield pytest.param(model, id=model['Name'])


@pytest.mark.parametrize('model', metafile_models())
def test_entry_builds_with_listed_parameters(model):
    built = build_from_config(str(ROOT / model['Config']))
    assert sum(p.numel() for p in built.parameters()) == model['Metadata']['Parameters']


@pytest.mark.parametrize('model', metafile_models())
def test_zoo_row_matches_entry(model):
    config_name = model['Config'].rsplit('/', 1)[1]
    rows = [line for line in ZOO.read_text().splitlines()
            if line.startswith('|') and f']({zoo_link(model["Config"])})' in line and config_name in line]
    assert len(rows) == 1, f'docs/model_zoo.md has {len(rows)} model-zoo rows linking {model["Config"]}'
    cells = [c.strip() for c in rows[0].split('|')]
    for result in model['Results']:
        for value in result['Metrics'].values():
            assert str(value) in cells, (model['Name'], value, rows[0])
    params = model['Metadata']['Parameters'] / 1e6
    assert any(re.fullmatch(rf'{params:.1f}M\S*', c) for c in cells), (f'{params:.1f}M', rows[0])


def _zoo_rows(text: str) -> dict:
    """Model-zoo rows by config link, with the images/s cell (measured, so it varies) dropped."""
    rows = {}
    for block in re.findall(r'<!-- model-zoo:(\w+) -->\n(.*?)\n<!-- /model-zoo:\1 -->', text, re.S):
        lines = [line for line in block[1].splitlines() if line.startswith('|')]
        if not lines:  # the speed note
            continue
        header = [c.strip() for c in lines[0].strip('|').split('|')]
        for line in lines[2:]:
            cells = [c.strip() for c in line.strip('|').split('|')]
            key = next(c for c in cells if c.endswith('.py)'))
            rows[key] = [c for h, c in zip(header, cells) if h != 'images/s']
    return rows


@pytest.mark.e2e
def test_zoo_tables_are_what_the_generator_writes(tmp_path):
    from PIL import Image

    from ..conftest import run_tool
    page = tmp_path / 'model_zoo.md'
    page.write_text(ZOO.read_text())
    run_tool('misc/model_zoo.py', '--no-speed', '--doc', str(page), '--plot', str(tmp_path / 'zoo.png'))
    generated, committed = _zoo_rows(page.read_text()), _zoo_rows(ZOO.read_text())
    assert len(generated) == len(list(metafile_models())) == len(committed)
    assert generated == committed
    assert Image.open(tmp_path / 'zoo.png').size[0] > 400
