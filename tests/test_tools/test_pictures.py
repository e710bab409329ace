"""The pictures the analysis tools draw: feature maps (tools/analysis_tools/visualize_features.py) and training
curves (tools/analysis_tools/plot_curves.py)."""
import json

from PIL import Image

from ..conftest import run_tool


def test_feature_map_picture(tmp_path):
    image = tmp_path / 'in.png'
    Image.new('RGB', (80, 60), (200, 30, 30)).save(image)
    out = tmp_path / 'features.png'
    run_tool('analysis_tools/visualize_features.py', str(image), '--out', str(out), '--size', '64', '--topk', '3')
    picture = Image.open(out)
    picture.verify()
    assert picture.size[1] == 4 * 64  # one row per level


def test_curves_from_a_work_dir(tmp_path):
    run_dir = tmp_path / '20260101_000000' / 'vis_data'
    run_dir.mkdir(parents=True)
    lines = [dict(lr=1e-3, loss=2.0 - 0.1 * i, loss_cls=1.0, loss_bbox=0.5, time=0.5, epoch=1 + (i > 3), iter=i,
                  memory=0, step=i) for i in range(1, 6)]
    # COCO on the toy set: no large objects, so bbox_mAP_l is -1 at every validation.
    lines += [{'coco/bbox_mAP': 0.1 * step, 'coco/bbox_mAP_50': 0.2 * step, 'coco/bbox_mAP_l': -1.0, 'time': 0.1,
               'step': step} for step in (1, 2)]
    (run_dir / 'scalars.json').write_text('\n'.join(json.dumps(line) for line in lines))
    proc = run_tool('analysis_tools/plot_curves.py', str(tmp_path))
    drawn = proc.stdout.split('(', 1)[1].split(');', 1)[0].split(', ')
    assert drawn == ['lr', 'loss', 'loss_cls', 'loss_bbox', 'coco/bbox_mAP', 'coco/bbox_mAP_50']
    # training curves over iterations; this epoch-based run validated after epochs 1 and 2
    assert proc.stdout.rstrip().endswith('x axis: lr: iteration, loss: iteration, loss_cls: iteration, '
                                         'loss_bbox: iteration, coco/bbox_mAP: epoch, coco/bbox_mAP_50: epoch')
    picture = Image.open(tmp_path / 'curves.png')
    picture.verify()
    width, height = picture.size
    assert width < 2.5 * height, 'six panels should be laid out in a grid, not one row'
    bad = run_tool('analysis_tools/plot_curves.py', str(tmp_path), '--keys', 'loss_dfl', check=False)
    assert bad.returncode != 0 and 'loss_cls' in bad.stderr


def test_curves_of_an_iteration_based_run_count_iterations(tmp_path):
    """mmseg's configs: no epochs, validation logged at the iteration it ran."""
    run_dir = tmp_path / '20260101_000000' / 'vis_data'
    run_dir.mkdir(parents=True)
    lines = [dict(lr=1e-3, loss=1.0, iter=i, step=i) for i in (50, 100)] + [{'mIoU': 40.0, 'step': 100}]
    (run_dir / 'scalars.json').write_text('\n'.join(json.dumps(line) for line in lines))
    proc = run_tool('analysis_tools/plot_curves.py', str(tmp_path))
    assert proc.stdout.rstrip().endswith('x axis: lr: iteration, loss: iteration, mIoU: iteration')


def test_curves_without_logs_explain(tmp_path):
    proc = run_tool('analysis_tools/plot_curves.py', str(tmp_path), check=False)
    assert proc.returncode != 0 and 'scalars.json' in proc.stderr
