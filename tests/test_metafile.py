"""model-index.yml / metafiles: every entry's config exists and builds with the listed parameter count,
and the README's model-zoo rows show the same results."""
import re

import pytest
import yaml
from mmengine.config import Config
from mmengine.registry import DefaultScope

import convmlp_mm  # noqa: F401

from .conftest import ROOT


def metafile_models():
    index = yaml.safe_load((ROOT / 'model-index.yml').read_text())
    for metafile in index['Import']:
        for model in yaml.safe_load((ROOT / metafile).read_text())['Models']:
            yield pytest.param(model, id=model['Name'])


@pytest.mark.parametrize('model', metafile_models())
def test_entry_builds_with_listed_parameters(model):
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import MODELS
    cfg = Config.fromfile(str(ROOT / model['Config']))
    cfg.model.backbone.init_cfg = None
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        built = revert_sync_batchnorm(MODELS.build(cfg.model))
    assert sum(p.numel() for p in built.parameters()) == model['Metadata']['Parameters']


@pytest.mark.parametrize('model', metafile_models())
def test_readme_row_matches_entry(model):
    config_name = model['Config'].rsplit('/', 1)[1]
    rows = [line for line in (ROOT / 'README.md').read_text().splitlines()
            if line.startswith('|') and f']({model["Config"]})' in line and config_name in line]
    assert len(rows) == 1, f'README has {len(rows)} model-zoo rows linking {model["Config"]}'
    cells = [c.strip() for c in rows[0].split('|')]
    for result in model['Results']:
        for value in result['Metrics'].values():
            assert str(value) in cells, (model['Name'], value, rows[0])
    params = model['Metadata']['Parameters'] / 1e6
    assert any(re.fullmatch(rf'{params:.1f}M\S*', c) for c in cells), (f'{params:.1f}M', rows[0])
