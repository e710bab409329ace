"""The libraries' own analysis tools are doors too: each runs with our configs on a toy set, in every stack
of the matrix (their optional dependencies, psutil and seaborn, come with the set-up)."""
from pathlib import Path

import pytest

from ..conftest import onedl_stack
from .test_upstream import run_upstream

pytestmark = [pytest.mark.e2e, pytest.mark.matrix]


@pytest.fixture(scope='module')
def trained(upstream_mmdet_short_run):
    """A RetinaNet-ConvMLP-S trained for 8 iterations by mmdet's own train.py: config, checkpoint, work dir
    (the run tests/test_tools/test_upstream.py resumes against, made once per session: tests/conftest.py)."""
    config, work, proc = upstream_mmdet_short_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    return config, work / 'epoch_2.pth', work


def ok(proc) -> str:
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-3000:])
    return proc.stdout + proc.stderr


def test_mmdet_get_flops(trained):
    config, _, _ = trained
    assert 'Flops:' in ok(run_upstream('mmdet', 'analysis_tools/get_flops.py', str(config), '--num-images', '2'))


def test_mmpretrain_get_flops():
    from ..conftest import ROOT
    config = ROOT / 'configs' / 'classification' / 'convmlp_s_in1k.py'
    out = ok(run_upstream('mmpretrain', 'analysis_tools/get_flops.py', str(config), '--shape', '224'))
    assert 'Flops:' in out and '2.' in out  # ConvMLP-S: 2.4 GMACs


def test_mmdet_benchmark_of_the_data_pipeline(trained):
    """mmdet's benchmark.py times our configs' data loading (its --task inference moves the model to CUDA
    unconditionally, so on a CPU it fails for every model; tools/analysis_tools/benchmark_e2e.py times
    inference here)."""
    config, _, _ = trained
    out = ok(run_upstream('mmdet', 'analysis_tools/benchmark.py', str(config), '--task', 'dataloader',
                          '--dataset-type', 'train', '--repeat-num', '1',
                          '--max-iter', '3', '--num-warmup', '1', '--log-interval', '1'))
    assert 'fps' in out.lower()


def test_mmdet_analyze_logs(trained, tmp_path):
    _, _, work = trained
    scalars = next(work.glob('*/vis_data/scalars.json'))
    out_png = tmp_path / 'loss.png'
    # The fork's analyze_logs.py passes --style to matplotlib, whose styles its default ('dark', a seaborn
    # name) is not; upstream passes it to seaborn. So on the fork a matplotlib style must be named.
    style = ['--style', 'seaborn-v0_8-dark'] if onedl_stack() else []
    ok(run_upstream('mmdet', 'analysis_tools/analyze_logs.py', 'plot_curve', str(scalars), '--keys', 'loss',
                    '--out', str(out_png), *style))
    assert out_png.stat().st_size > 0


def test_mmdet_browse_dataset(trained, tmp_path):
    config, _, _ = trained
    ok(run_upstream('mmdet', 'analysis_tools/browse_dataset.py', str(config), '--output-dir', str(tmp_path),
                    '--not-show'))
    assert list(Path(tmp_path).rglob('*.png')) or list(Path(tmp_path).rglob('*.jpg'))


def test_mmdet_confusion_matrix(trained, tmp_path):
    config, checkpoint, _ = trained
    results = tmp_path / 'results.pkl'
    ok(run_upstream('mmdet', 'test.py', str(config), str(checkpoint), '--out', str(results), '--work-dir',
                    str(tmp_path / 'test')))
    ok(run_upstream('mmdet', 'analysis_tools/confusion_matrix.py', str(config), str(results), str(tmp_path),
                    '--score-thr', '0.0'))
    assert (tmp_path / 'confusion_matrix.png').is_file()
