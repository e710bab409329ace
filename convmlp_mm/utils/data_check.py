"""Say clearly, before any worker starts, when a config's data set is not where the config says, or when
its annotation file is empty or broken."""
import json
import os.path as osp
from typing import Iterator, List

from mmengine.config import Config, ConfigDict

from ..errors import UserError

#: What to tell a user per data set type: how the data is called and where to read how to get it.
DATASET_HINTS = {
    'CocoDataset': ('COCO', 'docs/training.md#preparing-coco', 'make demo'),
    'ADE20KDataset': ('ADE20K', 'docs/training.md#preparing-ade20k', 'make demo-seg'),
    'ImageNet': ('ImageNet', 'docs/training.md#preparing-classification-data', 'make demo (detection)'),
    'CIFAR10': ('CIFAR-10', 'docs/training.md#preparing-classification-data', 'make demo (detection)'),
    'CIFAR100': ('CIFAR-100', 'docs/training.md#preparing-classification-data', 'make demo (detection)'),
    'Flowers102': ('Flowers-102', 'docs/training.md#preparing-classification-data', 'make demo (detection)'),
}


class DatasetNotFoundError(UserError, FileNotFoundError):
    """A data set file or folder named by the config does not exist."""


class BadAnnotationFileError(UserError, ValueError):
    """An annotation file exists but is empty, is not valid JSON, or lists no images."""


# Files up to this size are parsed here to check them (the toy, custom and val sets); larger ones are
# real data sets (COCO's train file is 450 MB), where parsing twice would cost seconds at every start.
_PARSE_LIMIT = 64 * 2 ** 20


def _check_annotation_file(path: str, loader: str) -> None:
    if not path.endswith('.json') or not osp.isfile(path):
        return
    size = osp.getsize(path)
    if size == 0:
        raise BadAnnotationFileError(f'{loader}: the annotation file {path} is empty (0 bytes); was it cut '
                                     f'short while copying? Use a complete COCO-format file.')
    if size > _PARSE_LIMIT:
        return
    try:
        with open(path) as f:
            content = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BadAnnotationFileError(f'{loader}: the annotation file {path} is not valid JSON ({err})') from None
    if isinstance(content, dict) and 'images' in content and not content['images']:
        raise BadAnnotationFileError(f'{loader}: the annotation file {path} lists no images, so there is '
                                     f'nothing to train or test on')


def _leaf_datasets(dataset: ConfigDict) -> Iterator[ConfigDict]:
    """The datasets that read files, looking through wrappers (RepeatDataset, ConcatDataset, ...)."""
    if 'datasets' in dataset:
        for child in dataset['datasets']:
            yield from _leaf_datasets(child)
    elif 'dataset' in dataset:
        yield from _leaf_datasets(dataset['dataset'])
    else:
        yield dataset


def _expected_paths(dataset: ConfigDict) -> List[str]:
    root = dataset.get('data_root') or ''
    paths = []
    if dataset.get('ann_file'):
        paths.append(osp.join(root, dataset['ann_file']))
    prefix = dataset.get('data_prefix') or {}
    for value in (prefix.values() if isinstance(prefix, dict) else [prefix]):
        if isinstance(value, str) and value:
            paths.append(osp.join(root, value))
    if not paths and root:
        paths.append(root)
    return paths


def check_dataset_paths(cfg: Config, dataloaders: List[str]) -> None:
    """Raise :class:`DatasetNotFoundError` naming the missing path and what to do, for each loader
    in ``dataloaders`` (e.g. ``['train_dataloader', 'val_dataloader']``) that the config has."""
    for loader in dataloaders:
        if not cfg.get(loader):
            continue
        for dataset in _leaf_datasets(cfg[loader]['dataset']):
            for path in _expected_paths(dataset):
                if osp.exists(path):
                    _check_annotation_file(path, loader)
                    continue
                kind = dataset.get('type', 'dataset')
                name, docs, demo = DATASET_HINTS.get(kind.split('.')[-1], (kind, 'docs/training.md', 'make demo'))
                raise DatasetNotFoundError(
                    f'{name} not found: {loader} looks for {osp.abspath(path)} '
                    f"(data_root={dataset.get('data_root')!r}), which does not exist.\n"
                    f'  - put the data there (see {docs}), or point the config elsewhere, e.g.\n'
                    f'    --cfg-options {loader}.dataset.data_root=/path/to/data/\n'
                    f'  - or try the bundled toy data instead: {demo}')
