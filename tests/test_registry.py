"""ConvMLP builds from the mmdet, mmseg and mmpretrain registries, each as default scope."""
import subprocess
import sys

import pytest
from mmengine.registry import DefaultScope

from convmlp_mm import ConvMLP


def test_import_does_not_pull_in_downstream_libraries():
    code = ('import sys, convmlp_mm; loaded = [m for m in ("mmdet", "mmseg", "mmpretrain") if m in sys.modules]; '
            'assert not loaded, loaded')
    subprocess.run([sys.executable, '-c', code], check=True)


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg', 'mmpretrain'])
@pytest.mark.parametrize('type_name', ['ConvMLP', 'convmlp_mm.ConvMLP'])
def test_builds_from_each_library_registry(scope, type_name):
    registry = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    with DefaultScope.overwrite_default_scope(scope):
        model = registry.build(dict(type=type_name, arch='m', out_indices=(1, 3)))
    assert isinstance(model, ConvMLP) and model.out_channels == [128, 512]
