"""The doors users come in by that are not ours: each library's own tools/train.py and tools/test.py (what
`mim train` / `mim test` run, from the installed package's .mim/tools/), the three inferencers, and
Runner.from_cfg in a plain script, on our configs. Training runs check the guarantees that come with the
configs (atomic checkpoint backend, random state in checkpoints, exact resumption after SIGKILL, stop on a
NaN loss); they are a few iterations on tiny toy sets, to keep CI time in check.
"""
import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path, PosixPath

import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope
from PIL import Image

import convmlp_mm  # noqa: F401  (lets weights_only loading read mmengine's checkpoints, as in every tool)
from convmlp_mm.checkpoint_safety import load_checkpoint_file

from ..conftest import ROOT, RunsCode, env_with_glibc_allocator, onedl_stack, random_checkpoint, run_tool

pytestmark = pytest.mark.e2e

TOY = {
    'mmdet': ROOT / 'configs' / 'detection' / 'toy' / 'retinanet_convmlp_s_fpn_toy.py',
    'mmseg': ROOT / 'configs' / 'segmentation' / 'toy' / 'fpn_convmlp_s_toy.py',
    'mmpretrain': ROOT / 'configs' / 'classification' / 'toy' / 'convmlp_s_toy.py',
}
FULL = {
    'mmdet': ['configs/detection/retinanet_convmlp_s_fpn.py', 'configs/detection/mask_rcnn_convmlp_s_fpn.py'],
    'mmseg': ['configs/segmentation/fpn_convmlp_s_ade20k.py'],
    'mmpretrain': ['configs/classification/convmlp_s_in1k.py', 'configs/classification/convmlp_s_cifar10.py'],
}
# The checkpoint each library's train.py writes at the end of the short runs below. All three resume with
# `--resume` alone (mmseg's is a plain switch; mmdet's and mmpretrain's also take a path).
LAST = {'mmdet': 'epoch_2.pth', 'mmseg': 'iter_8.pth', 'mmpretrain': 'epoch_2.pth'}
# What a test run of our configs logs (convmlp_mm.RetainFreedMemoryHook) where the environment does not set glibc's
# allocator, as in the processes below.
RETAINED = 'glibc keeps freed memory for reuse (no mmap per block, no trimming)'


def upstream_tool(lib: str, name: str) -> Path:
    """The library's own tool as `mim` runs it: <site-packages>/<lib>/.mim/tools/<name>."""
    package = Path(importlib.util.find_spec(lib).submodule_search_locations[0])
    tool = package / '.mim' / 'tools' / name
    assert tool.is_file(), f'{lib} ships no {tool}'
    return tool


def data_for(lib: str, request) -> Path:
    return request.getfixturevalue({'mmdet': 'toy_coco', 'mmseg': 'toy_ade', 'mmpretrain': 'toy_cls'}[lib])


def short_run_config(lib: str, data: Path, folder: Path, name: str, hooks=(), record_backend: bool = True) -> Path:
    """A config inheriting the library's toy config, pointed at ``data``: 8 training iterations with a
    checkpoint every 4 (2 epochs of 4 for the epoch-based ones), validation at the end, and test hooks
    (tests/fault_hooks.py, importable with the repository root on PYTHONPATH). The guards are not restated
    here: they must come with the toy config."""
    hooks = [dict(type='RecordCheckpointBackendHook')] * record_backend + list(hooks)
    lines = [f'_base_ = {str(TOY[lib])!r}', f'data_root = {str(data) + "/"!r}']
    if hooks:
        lines += ["custom_imports = dict(imports=['convmlp_mm', 'tests.fault_hooks'], allow_failed_imports=False)",
                  f'custom_hooks = {hooks!r}']
    batch, interval = {'mmdet': (2, 1), 'mmseg': (2, 4), 'mmpretrain': (6, 1)}[lib]
    lines += [f'train_dataloader = dict(batch_size={batch}, dataset=dict(data_root=data_root))',
              'val_dataloader = dict(dataset=dict(data_root=data_root))',
              'test_dataloader = val_dataloader',
              f'default_hooks = dict(checkpoint=dict(interval={interval}, max_keep_ckpts=-1), logger=dict(interval=1))']
    if lib == 'mmdet':  # 8 images: 2 epochs of 4 iterations
        lines += ["val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')",
                  'test_evaluator = val_evaluator',
                  # after 8 iterations no score passes 0.05, and CocoMetric would have nothing to evaluate
                  'model = dict(test_cfg=dict(score_thr=0.0))',
                  'train_cfg = dict(max_epochs=2, val_interval=2)']
    elif lib == 'mmseg':  # 4 images, an infinite sampler: 8 iterations
        lines += ['train_cfg = dict(max_iters=8, val_interval=8)',
                  "param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=8)]"]
    else:  # 24 images: 2 epochs of 4; drop path on, so that resumption must restore the torch RNG
        lines += ['model = dict(backbone=dict(drop_path_rate=0.1))',
                  'train_cfg = dict(max_epochs=2, val_interval=2)',
                  "param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=True, end=1, "
                  "convert_to_iter_based=True)]"]
    path = folder / name
    path.write_text('\n'.join(lines) + '\n')
    return path


def run_upstream(lib: str, tool: str, *args: str) -> subprocess.CompletedProcess:
    """``python <lib>/.mim/tools/<tool> ARGS`` from the repository root (for tests.fault_hooks), with glibc's
    allocator as it comes (no ``MALLOC_*`` variables)."""
    env = env_with_glibc_allocator(PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, str(upstream_tool(lib, tool)), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)


def state_dict(path: Path) -> dict:
    return load_checkpoint_file(path)['state_dict']


def assert_equal_weights(want: dict, got: dict) -> None:
    assert want.keys() == got.keys()
    different = [k for k in want if not torch.equal(want[k], got[k])]
    assert not different, f'{len(different)} tensors differ after resumption, e.g. {different[:3]}'


@pytest.mark.matrix
@pytest.mark.parametrize('lib', sorted(TOY))
def test_upstream_train_resume_after_sigkill_and_test(lib, tmp_path, request):
    data = data_for(lib, request)
    if lib == 'mmdet':  # the same run as the analysis tools' (tests/test_tools/test_analysis_tools.py), once
        cfg, reference, proc = request.getfixturevalue('upstream_mmdet_short_run')
    else:
        reference = tmp_path / 'reference'
        cfg = short_run_config(lib, data, tmp_path, 'run.py')
        proc = run_upstream(lib, 'train.py', str(cfg), '--work-dir', str(reference))
    if lib == 'mmseg' and onedl_stack():
        # The fork's mmsegmentation is distributed as onedl-mmsegmentation, and mmengine resolves `mmseg::`
        # bases by the distribution name before any import the config names: mmseg's own train.py cannot read
        # such a config (docs/get_started.md, Tested environments). Ours imports convmlp_mm first, which maps the scope.
        assert proc.returncode != 0 and 'mmsegmentation is not installed' in proc.stderr, proc.stderr[-2000:]
        ours = subprocess.run([sys.executable, str(ROOT / 'tools' / 'train.py'), str(cfg), '--work-dir',
                               str(reference)], cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                              capture_output=True, text=True, timeout=900)
        assert ours.returncode == 0 and (reference / LAST[lib]).is_file(), ours.stderr[-3000:]
        return
    assert proc.returncode == 0, proc.stderr[-3000:]
    # The guards came with the config: the atomic backend wrote the checkpoints, which hold the random state.
    assert (reference / 'checkpoint_backend.txt').read_text() == 'AtomicLocalBackend'
    meta = load_checkpoint_file(reference / LAST[lib])['meta']
    assert set(meta['random_state']) == {'python', 'numpy', 'torch'}
    assert not list(reference.glob('.*.tmp'))

    work = tmp_path / 'killed'
    killed = run_upstream(lib, 'train.py', str(short_run_config(lib, data, tmp_path, 'kill.py',
                                                                 [dict(type='KillAtIterHook', at=6)])),
                          '--work-dir', str(work))
    assert killed.returncode == -signal.SIGKILL  # in the second half, after the first checkpoint
    resumed = run_upstream(lib, 'train.py', str(cfg), '--work-dir', str(work), '--resume')
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert 'resumed' in (resumed.stdout + resumed.stderr).lower()
    assert_equal_weights(state_dict(reference / LAST[lib]), state_dict(work / LAST[lib]))

    # The library's own test.py evaluates the checkpoint and prints the metrics.
    tested = run_upstream(lib, 'test.py', str(cfg), str(reference / LAST[lib]), '--work-dir', str(tmp_path / 'test'))
    assert tested.returncode == 0, tested.stderr[-3000:]
    metric = {'mmdet': 'coco/bbox_mAP:', 'mmseg': 'mIoU:', 'mmpretrain': 'accuracy/top1:'}[lib]
    assert metric in tested.stdout + tested.stderr
    # and, with the config's RetainFreedMemoryHook, kept freed memory for the next batch
    assert f'CPU test run: {RETAINED}' in tested.stdout + tested.stderr


def test_upstream_train_stops_on_a_nan_loss(toy_coco, tmp_path):
    work = tmp_path / 'work'
    cfg = short_run_config('mmdet', toy_coco, tmp_path, 'nan.py', [dict(type='PoisonWeightsHook', at=6)])
    proc = run_upstream('mmdet', 'train.py', str(cfg), '--work-dir', str(work))
    assert proc.returncode != 0
    assert 'NonFiniteLossError: the training loss is nan at iteration 6 (epoch 2)' in proc.stderr
    assert sorted(p.name for p in work.glob('*.pth')) == ['epoch_1.pth']  # nothing saved from broken weights


def test_runner_from_cfg_in_a_plain_script(toy_cls, tmp_path):
    cfg = short_run_config('mmpretrain', toy_cls, tmp_path, 'run.py')
    script = tmp_path / 'my_training.py'
    script.write_text(
        'import re, sys\n'
        'from pathlib import Path\n'
        'import torch\n'
        'from mmengine.config import Config\n'
        'from mmengine.runner import Runner\n'
        'def returned_mb():  # of a 64 MiB block (over glibc\'s largest mmap threshold) when it is freed\n'
        '    def resident():\n'
        "        return int(re.search(r'^VmRSS:\\s+(\\d+) kB', Path('/proc/self/status').read_text(), re.M)[1])\n"
        '    block = torch.ones(2 ** 24)\n'
        '    before = resident()\n'
        '    del block\n'
        '    return round((before - resident()) / 1024)\n'
        'cfg = Config.fromfile(sys.argv[1])\n'
        'cfg.work_dir = sys.argv[2]\n'
        'runner = Runner.from_cfg(cfg)\n'
        'runner.train()\n'
        "print('RETURNED AFTER TRAINING', returned_mb())\n"
        "print('TEST', runner.test())\n"
        "print('RETURNED AFTER TEST', returned_mb())\n")
    work = tmp_path / 'work'
    proc = subprocess.run([sys.executable, str(script), str(cfg), str(work)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600, env=env_with_glibc_allocator(PYTHONPATH=str(ROOT)))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "TEST {'accuracy/top1':" in proc.stdout
    assert (work / 'checkpoint_backend.txt').read_text() == 'AtomicLocalBackend'
    assert 'random_state' in load_checkpoint_file(work / 'epoch_2.pth')['meta']
    # Training is left as glibc does it; the test run keeps freed memory (RetainFreedMemoryHook), and says so.
    returned = {when: int(line.rsplit(' ', 1)[1]) for line in proc.stdout.splitlines()
                for when in ('TRAINING', 'TEST') if line.startswith(f'RETURNED AFTER {when} ')}
    assert returned['TRAINING'] >= 60 and returned['TEST'] <= 4, returned
    assert f'CPU test run: {RETAINED}' in proc.stdout + proc.stderr


def a_toy_image(lib: str, data: Path) -> str:
    pattern = {'mmdet': 'val/*.png', 'mmseg': 'images/validation/*.jpg', 'mmpretrain': 'val/*/*.png'}[lib]
    return str(sorted(data.glob(pattern))[0])


@pytest.mark.parametrize('lib, config', [(lib, str(TOY[lib])) for lib in sorted(TOY)]
                         + [(lib, config) for lib in sorted(FULL) for config in FULL[lib]],
                         ids=lambda v: Path(v).stem if '/' in str(v) else v)
@pytest.mark.matrix
def test_inferencer(lib, config, tmp_path, request):
    """Each library's inferencer, as a user calls it, on our toy and full-size configs (random weights)."""
    image = a_toy_image(lib, data_for(lib, request))
    weights = str(random_checkpoint(config, tmp_path / 'model.pth'))
    height, width = np.asarray(Image.open(image)).shape[:2]
    # In a user's process the inferencer is alone; here other tests ran before it, and mmpretrain's
    # inferencer builds its pipeline in whatever default scope an earlier mmdet/mmseg call left set.
    with DefaultScope.overwrite_default_scope(lib):
        run_inferencer(lib, config, image, weights, tmp_path / 'out', (height, width))


def run_inferencer(lib: str, config: str, image: str, weights: str, out: Path, size) -> None:
    if lib == 'mmdet':
        from mmdet.apis import DetInferencer
        result = DetInferencer(model=config, weights=weights, device='cpu', show_progress=False)(
            image, out_dir=str(out), no_save_pred=False)
        prediction = result['predictions'][0]
        assert {'bboxes', 'labels', 'scores'} <= set(prediction)
        assert len(prediction['bboxes']) == len(prediction['scores'])
        assert list((out / 'vis').iterdir())
    elif lib == 'mmseg':
        from mmseg.apis import MMSegInferencer
        result = MMSegInferencer(model=config, weights=weights, device='cpu')(image, out_dir=str(out))
        assert result['predictions'].shape == size
        assert list((out / 'vis').iterdir())
    else:
        from mmpretrain.apis import ImageClassificationInferencer
        result = ImageClassificationInferencer(model=config, pretrained=weights, device='cpu')(image)[0]
        num_classes = {'convmlp_s_toy': 3, 'convmlp_s_in1k': 1000, 'convmlp_s_cifar10': 10}[Path(config).stem]
        assert result['pred_scores'].shape == (num_classes,)
        assert abs(float(result['pred_scores'].sum()) - 1) < 1e-4


@pytest.mark.parametrize('config', [TOY['mmseg'], ROOT / FULL['mmseg'][0]], ids=['toy', 'full'])
def test_our_demo_on_segmentation_configs(config, toy_ade, tmp_path):
    """tools/demo.py on segmentation configs, whose test pipeline checks labels (inference has none)."""
    weights = random_checkpoint(str(config), tmp_path / 'model.pth')
    proc = run_tool('demo.py', a_toy_image('mmseg', toy_ade), str(config), str(weights), '--out-dir',
                    str(tmp_path / 'out'))
    assert 'wrote the images' in proc.stdout
    assert len(list((tmp_path / 'out' / 'vis').iterdir())) == 1


def test_upstream_test_on_the_full_size_segmentation_config(toy_ade, tmp_path):
    """mmseg's test.py on the ADE20K config, whose test pipeline checks labels, with the toy set (ADE20K's
    layout and label range) in place of ADE20K, random weights."""
    config = ROOT / FULL['mmseg'][0]
    weights = random_checkpoint(str(config), tmp_path / 'model.pth')
    proc = run_upstream('mmseg', 'test.py', str(config), str(weights), '--work-dir', str(tmp_path / 'work'),
                        '--cfg-options', f'test_dataloader.dataset.data_root={toy_ade}/')
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'mIoU:' in proc.stdout + proc.stderr


@pytest.mark.matrix
@pytest.mark.parametrize('door', ['our test.py', 'our demo.py', 'our train.py --resume', "mmdet's test.py"])
def test_code_running_checkpoint_is_refused_with_one_clear_message(door, toy_coco, tmp_path):
    marker = tmp_path / 'pwned'
    bad = tmp_path / 'bad.pth'
    torch.save({'state_dict': {}, 'meta': {'note': RunsCode(marker)}}, bad)
    cfg = short_run_config('mmdet', toy_coco, tmp_path, 'run.py', record_backend=False)
    if door == 'our test.py':
        proc = run_tool('test.py', str(cfg), str(bad), '--work-dir', str(tmp_path / 'w'), check=False)
    elif door == 'our demo.py':
        proc = run_tool('demo.py', a_toy_image('mmdet', toy_coco), str(cfg), str(bad), '--out-dir',
                        str(tmp_path / 'out'), check=False)
    elif door == 'our train.py --resume':
        proc = run_tool('train.py', str(cfg), '--work-dir', str(tmp_path / 'w'), '--resume', str(bad), check=False)
    else:
        proc = run_upstream('mmdet', 'test.py', str(cfg), str(bad), '--work-dir', str(tmp_path / 'w'))
    assert proc.returncode != 0
    assert not marker.exists()
    message = f'{bad} was not loaded: it refers to'
    # the globals the pickle refers to: what RunsCode.__reduce__ wrote (Python 3.13 defines them in pathlib._local)
    path, posix = (f'{cls.__module__}.{cls.__qualname__}' for cls in (Path, PosixPath))
    assert f'{message} {path}, {posix},' in proc.stderr, proc.stderr[-2000:]
    assert ('weights_only=False' not in proc.stderr
            and 'docs/training.md#checkpoints-that-hold-other-objects' in proc.stderr)
    if door.startswith('our'):
        assert 'Traceback' not in proc.stderr
        assert proc.stderr.strip().splitlines()[-1].startswith(f'error: {message}')


def test_every_config_carries_the_run_hooks():
    """The training guards and the CPU test set-up travel with the configs, whatever launcher builds the Runner."""
    from mmengine.config import Config
    configs = [p for p in sorted((ROOT / 'configs').rglob('*.py')) if '_base_' not in p.parts
               and not p.name.startswith('_')]
    assert len(configs) >= 25
    for path in configs:
        hooks = Config.fromfile(str(path)).default_hooks
        assert hooks.checkpoint.backend_args == dict(backend='atomic_local'), path
        assert hooks.random_state.type == 'convmlp_mm.RandomStateHook', path
        assert hooks.stop_on_nonfinite_loss.type == 'convmlp_mm.StopOnNonFiniteLossHook', path
        assert hooks.retain_freed_memory.type == 'convmlp_mm.RetainFreedMemoryHook', path
