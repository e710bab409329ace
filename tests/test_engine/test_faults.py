"""Fault-injection suite (marker ``fault``): kills, crashes while saving, diverging losses, distributed
runs and broken input, each on a real tools/train.py run of the toy classifier (or detector).

Every case also checks that nothing was lost: files that existed before the fault are byte-identical
afterwards. ``pytest -m fault`` ends with a summary table (tests/conftest.py).
"""
import hashlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from convmlp_mm.checkpoint_safety import load_checkpoint_file
from convmlp_mm.engine.storage import AtomicLocalBackend, is_whole_checkpoint

from ..conftest import ROOT, run_tool, toy_options

pytestmark = pytest.mark.fault
TOY = ROOT / 'configs' / 'classification' / 'toy' / 'convmlp_s_toy.py'
TOY_DET = ROOT / 'configs' / 'detection' / 'toy' / 'retinanet_convmlp_s_fpn_toy.py'


def config(tmp_path: Path, data_root: Path, name: str = 'run.py', hooks=(), **overrides) -> Path:
    """A config inheriting the toy classifier: tiny data, 3 epochs of 6 iterations, a checkpoint per
    epoch (all kept), drop path on (so resumption must restore the random state), optional fault hooks."""
    lines = [f'_base_ = {str(TOY)!r}',
             "custom_imports = dict(imports=['convmlp_mm', 'tests.fault_hooks'], allow_failed_imports=False)",
             f'custom_hooks = {list(hooks)!r}',
             'model = dict(backbone=dict(drop_path_rate=0.1))',
             *[f"{split}_dataloader = dict(batch_size=4, dataset=dict(data_root={str(data_root)!r}))"
               for split in ('train', 'val', 'test')],
             'train_cfg = dict(max_epochs=3, val_interval=3)',
             # warm-up only: the base's cosine phase needs more than one epoch, and some cases run one
             "param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=True, end=1, "
             "convert_to_iter_based=True)]",
             'default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=-1), logger=dict(interval=1))']
    lines += [f'{key} = {value!r}' for key, value in overrides.items()]
    path = tmp_path / name
    path.write_text('\n'.join(lines) + '\n')
    return path


def train(cfg: Path, work: Path, *args: str, env=None) -> subprocess.CompletedProcess:
    """tools/train.py as a user runs it; the repository root is importable for tests.fault_hooks."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.run([sys.executable, str(ROOT / 'tools' / 'train.py'), str(cfg), '--work-dir', str(work),
                           *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


def fingerprints(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob('*.pth'))}


def record_loss(request, before: dict, folder: Path) -> None:
    """Note (for the summary table) which files that existed before the fault changed or vanished."""
    after = fingerprints(folder)
    lost = sorted(name for name, digest in before.items() if after.get(name) != digest)
    request.node.user_properties.append(('data_lost', lost))
    assert not lost, f'files lost or changed by the fault: {lost}'


def weights(path: Path) -> dict:
    return load_checkpoint_file(path)['state_dict']


def test_sigkill_mid_epoch_then_resume_ends_with_identical_weights(toy_cls, tmp_path, request):
    reference = train(config(tmp_path, toy_cls), tmp_path / 'reference')
    assert reference.returncode == 0, reference.stderr[-3000:]

    work = tmp_path / 'killed'
    killed = train(config(tmp_path, toy_cls, 'kill.py', hooks=[dict(type='KillAtIterHook', at=9)]), work)
    assert killed.returncode == -signal.SIGKILL  # died in epoch 2, iteration 3 of 6
    assert sorted(fingerprints(work)) == ['epoch_1.pth']
    before = fingerprints(work)
    resumed = train(config(tmp_path, toy_cls), work, '--resume')
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert 'resumed epoch: 1' in resumed.stdout + resumed.stderr

    want, got = weights(tmp_path / 'reference' / 'epoch_3.pth'), weights(work / 'epoch_3.pth')
    assert want.keys() == got.keys()
    different = [k for k in want if not torch.equal(want[k], got[k])]
    assert not different, f'{len(different)} tensors differ after resumption, e.g. {different[:3]}'
    record_loss(request, before, work)


def test_crash_while_saving_keeps_the_previous_file_whole(tmp_path, request, monkeypatch):
    target = tmp_path / 'epoch_1.pth'
    torch.save({'state_dict': {'w': torch.ones(3)}}, target)
    before = fingerprints(tmp_path)
    # A child process writes a 400 MB checkpoint over it through the atomic backend and is killed mid-write.
    code = ('import sys, torch, io; from convmlp_mm.engine.storage import AtomicLocalBackend; '
            'f = io.BytesIO(); torch.save({"state_dict": {"w": torch.zeros(100_000_000)}}, f); '
            'print("writing", flush=True); AtomicLocalBackend().put(f.getvalue(), sys.argv[1])')
    child = subprocess.Popen([sys.executable, '-c', code, str(target)], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == 'writing'
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert is_whole_checkpoint(str(target))  # the old file, or (if the rename won the race) the new one
    if fingerprints(tmp_path)['epoch_1.pth'] == before['epoch_1.pth']:
        record_loss(request, before, tmp_path)
    else:  # the write completed before the kill: the file is the new, whole checkpoint
        request.node.user_properties.append(('data_lost', []))
        assert load_checkpoint_file(target)['state_dict']['w'].numel() == 100_000_000
    # The killed writer may have left its temporary file (if the kill landed after it was created); one
    # more stands for an earlier dead writer, so that the clean-up below is always exercised. Another
    # checkpoint's temporary file must be left alone.
    (tmp_path / '.epoch_1.pth.dead0000.tmp').write_bytes(b'PK partial')
    (tmp_path / '.epoch_2.pth.busy0000.tmp').write_bytes(b'PK partial')
    orphans = set(tmp_path.glob('.*.tmp'))
    # An error just before the rename (a full disk, say) leaves the target as it was and no new temporary file.
    good = target.read_bytes()
    with monkeypatch.context() as patch:
        def fail(*args):
            raise OSError('No space left on device')
        patch.setattr(os, 'replace', fail)
        with pytest.raises(OSError, match='No space'):
            AtomicLocalBackend().put(b'partial', str(target))
    assert target.read_bytes() == good and set(tmp_path.glob('.*.tmp')) == orphans
    # The next write that lands removes what the dead writer left behind.
    AtomicLocalBackend().put(good, str(target))
    assert target.read_bytes() == good
    assert [p.name for p in tmp_path.glob('.*.tmp')] == ['.epoch_2.pth.busy0000.tmp']


def test_resume_skips_a_truncated_latest_checkpoint(toy_cls, tmp_path, request):
    work = tmp_path / 'work'
    first = train(config(tmp_path, toy_cls, train_cfg=dict(max_epochs=1, val_interval=1)), work)
    assert first.returncode == 0, first.stderr[-3000:]
    # Simulate a crash while another backend wrote epoch_2.pth: a truncated file that last_checkpoint names.
    whole = (work / 'epoch_1.pth').read_bytes()
    (work / 'epoch_2.pth').write_bytes(whole[:len(whole) // 2])
    (work / 'last_checkpoint').write_text(str(work / 'epoch_2.pth'))
    before = {k: v for k, v in fingerprints(work).items() if k == 'epoch_1.pth'}
    resumed = train(config(tmp_path, toy_cls, train_cfg=dict(max_epochs=2, val_interval=2)), work, '--resume')
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert 'epoch_2.pth' in resumed.stderr and 'resuming from' in resumed.stderr and 'epoch_1.pth' in resumed.stderr
    assert is_whole_checkpoint(str(work / 'epoch_2.pth'))  # rewritten whole by the resumed run
    record_loss(request, before, work)


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(toy_cls, tmp_path, request):
    work = tmp_path / 'work'
    cfg = config(tmp_path, toy_cls, hooks=[dict(type='PoisonWeightsHook', at=9)])
    proc = train(cfg, work)
    assert proc.returncode == 1
    assert 'the training loss is nan at iteration 9 (epoch 2)' in proc.stderr
    assert 'epoch_1.pth' in proc.stderr and 'Traceback' not in proc.stderr
    assert sorted(fingerprints(work)) == ['epoch_1.pth']  # nothing saved from the broken weights
    assert all(torch.isfinite(v).all() for v in weights(work / 'epoch_1.pth').values() if v.is_floating_point())
    record_loss(request, fingerprints(work), work)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize('task', ['detection', 'classification'])
def test_two_process_gloo_run_ends_with_equal_weights_on_both_ranks(task, tmp_path, request):
    work = tmp_path / 'work'
    if task == 'detection':  # the toy RetinaNet, 2 iterations of 2 images on each rank, then validation
        data = request.getfixturevalue('toy_coco')
        cfg = tmp_path / 'det.py'
        cfg.write_text(f'_base_ = {str(TOY_DET)!r}\n'
                       "custom_imports = dict(imports=['convmlp_mm', 'tests.fault_hooks'], "
                       "allow_failed_imports=False)\n"
                       "custom_hooks = [dict(type='DumpWeightsHook')]\n")
        options = ['--cfg-options', *toy_options(data, TOY_DET)]
    else:  # the toy classifier, one epoch of 3 iterations of 4 images on each rank
        cfg = config(tmp_path, request.getfixturevalue('toy_cls'), hooks=[dict(type='DumpWeightsHook')],
                     train_cfg=dict(max_epochs=1, val_interval=1))
        options = []
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1', PORT=str(free_port()))
    proc = subprocess.run(['bash', str(ROOT / 'tools' / 'dist_train.sh'), str(cfg), '2', '--work-dir', str(work),
                           *options], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rank0, rank1 = (load_checkpoint_file(work / f'rank{r}.pth') for r in (0, 1))
    assert rank0.keys() == rank1.keys()
    assert len(rank0) > 100 and all(torch.equal(rank0[k], rank1[k]) for k in rank0)
    log = proc.stdout + proc.stderr
    assert 'Distributed training: True' in log and 'GPU number: 2' in log and "'backend': 'gloo'" in log
    request.node.user_properties.append(('data_lost', []))


def test_syncbn_config_falls_back_to_batchnorm_without_distribution(toy_cls, tmp_path, request):
    cfg = config(tmp_path, toy_cls, train_cfg=dict(max_epochs=1, val_interval=1))
    proc = train(cfg, tmp_path / 'work', '--cfg-options', 'model.backbone.norm_cfg.type=SyncBN')
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'SyncBatchNorm (SyncBN) layers in the model will be automatically reverted' in proc.stdout + proc.stderr
    request.node.user_properties.append(('data_lost', []))


@pytest.mark.parametrize('damage', ['corrupt', 'missing'])
def test_broken_training_image_fails_naming_the_file(toy_cls, tmp_path, damage, request):
    data = tmp_path / 'toy_cls'
    subprocess.run(['cp', '-r', str(toy_cls), str(data)], check=True)
    victim = sorted((data / 'train' / 'square').glob('*.png'))[0]
    if damage == 'corrupt':
        victim.write_bytes(b'not a png at all')
    else:
        victim.unlink()
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (data / 'train' / 'circle').glob('*')}
    cfg = config(tmp_path, data, train_cfg=dict(max_epochs=1, val_interval=1))
    if damage == 'missing':  # mmpretrain lists the folder at start-up, so point the list at the file
        (data / 'train.txt').write_text('\n'.join(f'{p.parent.name}/{p.name} {i % 3}' for i, p in enumerate(
            sorted((data / 'train').glob('*/*.png')) + [victim])))
        proc = train(cfg, tmp_path / 'work', '--cfg-options', 'train_dataloader.dataset.ann_file=train.txt')
    else:
        proc = train(cfg, tmp_path / 'work')
    assert proc.returncode != 0
    assert victim.name in proc.stderr, proc.stderr[-2000:]
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (data / 'train' / 'circle').glob('*')}
    lost = sorted(set(before) - set(k for k in after if after[k] == before.get(k)))
    request.node.user_properties.append(('data_lost', lost))
    assert not lost


def test_unknown_backbone_key_is_named_with_the_valid_ones(toy_cls, tmp_path, request):
    cfg = config(tmp_path, toy_cls)
    proc = train(cfg, tmp_path / 'work', '--cfg-options', 'model.backbone.depths=[2,2]')
    assert proc.returncode != 0
    assert "unknown argument(s) ['depths']" in proc.stderr and "'out_indices'" in proc.stderr
    request.node.user_properties.append(('data_lost', []))


@pytest.mark.parametrize('size', [(16, 16), (16, 1024), (1024, 16), (33, 47)], ids=lambda s: f'{s[0]}x{s[1]}')
def test_tiny_and_extreme_images_through_backbone_and_detectors(size, request):
    from mmdet.apis import inference_detector, init_detector

    from convmlp_mm import ConvMLP
    levels = ConvMLP().eval()(torch.randn(1, 3, *size))
    assert [tuple(t.shape[2:]) for t in levels] == [(-(-size[0] // s), -(-size[1] // s)) for s in (4, 8, 16, 32)]
    image = np.random.default_rng(0).integers(0, 255, (*size, 3), dtype=np.uint8)
    for name in ('retinanet_convmlp_s_fpn_toy.py', 'mask_rcnn_convmlp_s_fpn_toy.py'):
        model = init_detector(str(ROOT / 'configs' / 'detection' / 'toy' / name), device='cpu')
        result = inference_detector(model, image)
        assert result.pred_instances.bboxes.shape[-1] == 4
    request.node.user_properties.append(('data_lost', []))


@pytest.mark.parametrize('content', ['', '{"images": [], "annotations": [], "categories": []}'],
                         ids=['zero-bytes', 'no-images'])
def test_empty_annotation_file_gives_a_clear_error(toy_coco, tmp_path, content, request):
    ann = tmp_path / 'instances_train.json'
    ann.write_text(content)
    proc = run_tool('train.py', str(ROOT / 'configs/detection/toy/retinanet_convmlp_s_fpn_toy.py'),
                    '--work-dir', str(tmp_path / 'work'), '--cfg-options',
                    f'train_dataloader.dataset.data_root={toy_coco}/',
                    f'train_dataloader.dataset.ann_file={ann}', f'val_dataloader.dataset.data_root={toy_coco}/',
                    f'test_dataloader.dataset.data_root={toy_coco}/', check=False)
    assert proc.returncode != 0
    assert 'instances_train.json' in proc.stderr and 'Traceback' not in proc.stderr, proc.stderr[-2000:]
    request.node.user_properties.append(('data_lost', []))
