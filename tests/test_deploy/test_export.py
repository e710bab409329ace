"""ONNX export of the backbone checked by onnxruntime, and how detections are compared."""
import numpy as np
import pytest

from convmlp_mm.deploy import pair_detections

from ..conftest import ROOT, official_file, run_tool


@pytest.mark.e2e
@pytest.mark.parametrize('extra', [[], ['--deploy', '--out-indices', '1', '3']], ids=['plain', 'deploy'])
def test_onnx_export_matches_pytorch_at_two_sizes(tmp_path, extra):
    ckpt = tmp_path / 'convmlp_s_imagenet.pth'
    official_file('s', ckpt)  # non-trivial norm statistics, so a fusion error would show
    out = tmp_path / 'convmlp_s.onnx'
    proc = run_tool('deployment/export_onnx.py', '--arch', 's', '--checkpoint', str(ckpt), '--out', str(out),
                    '--check-sizes', '64', '96', '100', '72', *extra)
    sizes = [line for line in proc.stdout.splitlines() if line.startswith('input ')]
    assert len(sizes) == 2 and '2x3x64x96' in sizes[0] and '2x3x100x72' in sizes[1]
    levels = 2 if extra else 4
    shapes = sizes[1].split('outputs ')[1].split(';')[0].split(', ')
    assert len(shapes) == levels and shapes[-1] == '2x512x4x3'  # 100x72 at stride 32, rounded up
    worst = float(proc.stdout.split('max difference ')[-1].split()[0])
    assert worst <= 1e-4 and out.stat().st_size > 1e6


@pytest.mark.e2e
def test_onnx_export_of_a_detection_config_backbone_and_neck(tmp_path):
    out = tmp_path / 'retinanet.onnx'
    proc = run_tool('deployment/export_onnx.py', '--config', str(ROOT / 'configs/detection/retinanet_convmlp_s_fpn.py'),
                    '--features', '--out', str(out), '--check-sizes', '64', '64', '96', '128')
    assert proc.stdout.count('input 2x3x') == 2 and 'outputs 2x256x8x8, 2x256x4x4, ' in proc.stdout
    assert float(proc.stdout.split('max difference ')[-1].split()[0]) <= 1e-4


def test_detections_pair_by_image_label_and_closeness_not_by_position():
    # Two detections tied to float rounding come out swapped in the second list, and one is of another image.
    keys_a = np.array([[0, 1], [0, 1], [1, 2]])
    scores_a = np.array([0.9, 0.9, 0.5])
    boxes_a = np.array([[0, 0, 10, 10], [50, 50, 90, 90], [5, 5, 6, 6]], dtype=float)
    order = [1, 0, 2]
    pairs = pair_detections(keys_a, scores_a, boxes_a, keys_a[order], scores_a[order] + 1e-7, boxes_a[order],
                            box_scale=100)
    assert pairs.tolist() == [1, 0, 2]
    # The same boxes and scores in another image (or of another label) have no counterpart.
    other = keys_a.copy()
    other[2, 0] = 0
    assert pair_detections(keys_a, scores_a, boxes_a, other, scores_a, boxes_a).tolist() == [0, 1, -1]
    # No detections in one or both (an untrained detector scores nothing above the threshold).
    none = np.zeros((0, 2), dtype=np.int64)
    assert pair_detections(none, np.zeros(0), np.zeros((0, 4)), none, np.zeros(0), np.zeros((0, 4))).tolist() == []
    assert pair_detections(keys_a, scores_a, boxes_a, none, np.zeros(0), np.zeros((0, 4))).tolist() == [-1] * 3
    assert pair_detections(keys_a[:, 1], scores_a, boxes_a, keys_a[:, 1], scores_a, boxes_a).tolist() == [0, 1, 2]


@pytest.mark.e2e
def test_an_export_that_fails_its_check_is_removed_with_the_reason(tmp_path):
    out = tmp_path / 'convmlp_s.onnx'
    # A negative tolerance no file can meet stands in for a runtime that computes something else.
    proc = run_tool('deployment/export_onnx.py', '--arch', 's', '--out', str(out), '--check-sizes', '64', '64',
                    '64', '96', '--tolerance', '-1', check=False)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: onnxruntime's outputs differ from PyTorch's by") and 'above --tolerance -1' in last
    assert not list(tmp_path.iterdir())
