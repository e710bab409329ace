import os
import shutil
import subprocess
import sys
from pathlib import Path

# Under pytest-xdist (`make test`: a worker per core), each worker and the tools it starts get an equal share of the
# cores for torch, set before torch is imported: with every worker's OpenMP pool sized to the whole machine, the
# pools would spin against each other. A thread count the user set is kept.
if 'PYTEST_XDIST_WORKER_COUNT' in os.environ and 'OMP_NUM_THREADS' not in os.environ:
    _cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count() or 1
    os.environ['OMP_NUM_THREADS'] = str(max(1, _cores // int(os.environ['PYTEST_XDIST_WORKER_COUNT'])))

import pytest  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def env_with_glibc_allocator(**extra: str) -> dict:
    """This process's environment without the ``MALLOC_*`` variables that set glibc's allocator (what
    :func:`convmlp_mm.utils.allocator.retain_freed_memory` leaves alone), plus ``extra``: a child process that gets it
    allocates as glibc does by default until something in it changes that."""
    from convmlp_mm.utils.allocator import ENVIRONMENT
    return dict({k: v for k, v in os.environ.items() if k not in ENVIRONMENT}, **extra)


def onedl_stack() -> bool:
    """Whether the mm* libraries are the OneDL fork's (distribution names onedl-*, same modules)."""
    from importlib.metadata import PackageNotFoundError, distribution
    try:
        distribution('onedl-mmengine')
        return True
    except PackageNotFoundError:
        return False


def run_tool(*args: str, cwd: Path = ROOT, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``python tools/<args>`` as a user would, from ``cwd``; output is captured."""
    proc = subprocess.run([sys.executable, str(ROOT / 'tools' / args[0]), *args[1:]], cwd=cwd,
                          capture_output=True, text=True, timeout=1200)
    if check and proc.returncode != 0:
        raise AssertionError(f'tools/{args[0]} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n'
                             f'{proc.stderr[-4000:]}')
    return proc


class RunsCode:
    """Unpickling this touches ``marker``: what a hostile checkpoint could do instead."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        import pathlib
        return pathlib.Path.touch, (pathlib.Path(self.marker),)


def random_checkpoint(config: str, path: Path) -> Path:
    """A checkpoint of the config's model with its initial (random) weights, as Runner would save it."""
    from convmlp_mm.apis import build_from_config
    model = build_from_config(str(ROOT / config) if not Path(config).is_absolute() else config)
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return path


def official_state_dict(arch: str, num_classes: int = 1000) -> dict:
    """A random state_dict laid out like the official ``convmlp_{arch}_imagenet.pth`` (or, with another
    ``num_classes``, a fine-tuned ``convmlp_{arch}_cifar10.pth`` etc.), classifier keys included, with
    non-trivial norm statistics so that a wrongly mapped key shows in the outputs."""
    from convmlp_mm import ConvMLP
    torch.manual_seed({'s': 1, 'm': 2, 'l': 3}[arch])
    model = ConvMLP(arch=arch, final_norm=True)
    model.init_weights()
    state = model.state_dict()
    for key, value in state.items():
        if key.endswith('running_mean') or (key.endswith('bias') and value.dim() == 1):
            value.copy_(torch.randn_like(value) * 0.1)
        elif key.endswith('running_var'):
            value.copy_(torch.rand_like(value) + 0.5)
        elif value.dim() == 1 and value.is_floating_point():  # norm weights
            value.copy_(1 + torch.randn_like(value) * 0.1)
    state = dict(state)
    state['head.weight'] = torch.randn(num_classes, model.arch['dims'][-1]) * 0.02
    state['head.bias'] = torch.randn(num_classes) * 0.02
    return state


def official_file(arch: str, path: Path, num_classes: int = 1000) -> dict:
    """Write :func:`official_state_dict` to ``path`` as the official files are: a plain state_dict."""
    state = official_state_dict(arch, num_classes)
    torch.save(state, path)
    return state


@pytest.fixture(scope='session')
def wheel(tmp_path_factory) -> Path:
    """The wheel `pip install .` builds, from a copy of the sources (building in place leaves build/ behind).
    convmlp_mm/.mim/ links to configs/, model-index.yml and tools/, which the copy keeps as links."""
    src = tmp_path_factory.mktemp('src')
    for name in ('setup.py', 'README.md', 'model-index.yml'):
        shutil.copy(ROOT / name, src / name)
    for name in ('convmlp_mm', 'configs', 'tools'):
        shutil.copytree(ROOT / name, src / name, symlinks=True, ignore=shutil.ignore_patterns('__pycache__'))
    out = tmp_path_factory.mktemp('dist')
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '-q', str(src),
                    '-w', str(out)], check=True, capture_output=True, text=True, timeout=600)
    return next(out.glob('convmlp_mm-*.whl'))


@pytest.fixture(scope='session')
def toy_cls(tmp_path_factory) -> Path:
    """A tiny toy classification set (24 train / 6 val images of 64x64, 3 classes), by the generator."""
    out = tmp_path_factory.mktemp('data') / 'toy_cls'
    run_tool('misc/make_toy_data.py', 'cls', str(out), '--num-train', '24', '--num-val', '6', '--size', '64', '64')
    return out


@pytest.fixture(scope='session')
def toy_coco(tmp_path_factory) -> Path:
    """A tiny toy COCO set (8 train / 4 val images of 160x128), made by the user-facing generator."""
    out = tmp_path_factory.mktemp('data') / 'toy_coco'
    run_tool('misc/make_toy_data.py', 'det', str(out), '--num-train', '8', '--num-val', '4', '--size', '160', '128')
    return out


@pytest.fixture(scope='session')
def toy_ade(tmp_path_factory) -> Path:
    """A tiny toy segmentation set in ADE20K's layout (4 train / 2 val images of 96x64), by the generator."""
    out = tmp_path_factory.mktemp('data') / 'toy_ade'
    run_tool('misc/make_toy_data.py', 'seg', str(out), '--num-train', '4', '--num-val', '2', '--size', '96', '64')
    return out


def toy_options(data: Path, config: Path) -> list:
    """--cfg-options that point a toy config at ``data`` and make the run a few iterations long."""
    ann = str(data / 'annotations' / 'instances_val.json')
    opts = [f'{loader}.dataset.data_root={data}/' for loader in
            ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    opts += [f'val_evaluator.ann_file={ann}', f'test_evaluator.ann_file={ann}',
             'train_cfg.max_epochs=1', 'train_cfg.val_interval=1', 'train_dataloader.batch_size=2',
             'default_hooks.logger.interval=1']
    # After a few iterations no score passes mmdet's 0.05 threshold and CocoMetric would report
    # nothing; keep every detection so the metrics are really computed.
    opts.append('model.test_cfg.rcnn.score_thr=0.0' if 'mask_rcnn' in config.name else 'model.test_cfg.score_thr=0.0')
    return opts


@pytest.fixture(scope='session')
def trained_toy_detector(toy_coco, tmp_path_factory):
    """``work_dir(config)``: the work dir of the toy detector ``config`` trained by tools/train.py on
    :func:`toy_coco` with :func:`toy_options` (one epoch), once per session, shared by the tests that need a
    trained toy detector (epoch_1.pth, last_checkpoint, the logs). Read it; write elsewhere."""
    runs = {}

    def work_dir(config: Path) -> Path:
        config = Path(config)
        if config not in runs:
            work = tmp_path_factory.mktemp(f'trained_{config.stem}') / 'work'
            run_tool('train.py', str(config), '--work-dir', str(work), '--cfg-options', *toy_options(toy_coco, config))
            runs[config] = work
        return runs[config]
    return work_dir


@pytest.fixture(scope='session')
def upstream_mmdet_short_run(toy_coco, tmp_path_factory):
    """mmdet's own tools/train.py on the short toy RetinaNet run of tests/test_tools/test_upstream.py
    (``short_run_config``: 2 epochs of 4 iterations, a checkpoint per epoch, the checkpoint backend recorded),
    once per session: (config, work dir, the finished process). Shared by the upstream resume test and the
    analysis tools' tests; each checks the process. Read the work dir; write elsewhere."""
    from .test_tools.test_upstream import run_upstream, short_run_config
    folder = tmp_path_factory.mktemp('upstream_mmdet')
    config = short_run_config('mmdet', toy_coco, folder, 'run.py')
    work = folder / 'reference'
    return config, work, run_upstream('mmdet', 'train.py', str(config), '--work-dir', str(work))


def pytest_terminal_summary(terminalreporter) -> None:
    """After a run that included the fault-injection suite, a table: cases tried, passed, data lost."""
    reports = [r for outcome in ('passed', 'failed') for r in terminalreporter.stats.get(outcome, [])
               if r.when == 'call' and 'test_faults.py' in r.nodeid]
    if not reports:
        return
    write = terminalreporter.write_line
    write('')
    write('fault-injection summary')
    write(f'| {"case":<86} | result | data lost |')
    write(f'| {"-" * 86} | ------ | --------- |')
    for r in sorted(reports, key=lambda r: r.nodeid):
        lost = dict(r.user_properties).get('data_lost')
        lost_cell = 'unknown' if lost is None else (', '.join(lost) or 'none')
        write(f'| {r.nodeid.split("::", 1)[1]:<86} | {r.outcome:<6} | {lost_cell:<9} |')
    passed = sum(r.outcome == 'passed' for r in reports)
    lost_any = [r for r in reports if dict(r.user_properties).get('data_lost')]
    write(f'cases tried: {len(reports)}, passed: {passed}, cases that lost data: {len(lost_any)}')
