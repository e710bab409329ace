"""The toy classification path through mmpretrain: generator, train.py, test.py, demo.py."""
import json

import pytest
from PIL import Image

from ..conftest import ROOT, run_tool

TOY = ROOT / 'configs' / 'classification' / 'toy' / 'convmlp_s_toy.py'


def test_generator_writes_balanced_class_folders(toy_cls):
    for split, count in (('train', 24), ('val', 6)):
        folders = sorted(p.name for p in (toy_cls / split).iterdir())
        assert folders == ['circle', 'square', 'triangle']
        assert [len(list((toy_cls / split / f).glob('*.png'))) for f in folders] == [count // 3] * 3


@pytest.mark.matrix
@pytest.mark.e2e
def test_train_test_demo_round_trip(toy_cls, tmp_path):
    options = [f'train_dataloader.dataset.data_root={toy_cls}', f'val_dataloader.dataset.data_root={toy_cls}',
               f'test_dataloader.dataset.data_root={toy_cls}', 'train_cfg.max_epochs=2', 'train_cfg.val_interval=1',
               'train_dataloader.batch_size=4']
    work = tmp_path / 'work'
    run_tool('train.py', str(TOY), '--work-dir', str(work), '--tensorboard', '--cfg-options', *options)
    ckpt = work / 'epoch_2.pth'
    assert ckpt.is_file()
    assert list(work.glob('*/vis_data/events.out.tfevents.*'))  # --tensorboard logged through TensorBoard
    run_tool('analysis_tools/plot_curves.py', str(work))
    Image.open(work / 'curves.png').verify()
    run_tool('test.py', str(TOY), str(ckpt), '--work-dir', str(tmp_path / 'test'), '--cfg-options', *options)
    metrics = json.loads(next((tmp_path / 'test').glob('*/*.json')).read_text())
    assert 0 <= metrics['accuracy/top1'] <= 100
    image = next((toy_cls / 'val' / 'circle').glob('*.png'))
    proc = run_tool('demo.py', str(image), str(TOY), str(ckpt), '--out-dir', str(tmp_path / 'demo'))
    line = next(line for line in proc.stdout.splitlines() if line.startswith('image 0:'))
    assert sorted(part.split()[0] for part in line.split(':', 1)[1].split(',')) == ['circle', 'square', 'triangle']
