"""Export a config's whole model (network and post-processing) to one ONNX file with its JSON sidecar."""
from pathlib import Path
from typing import Optional, Tuple

import torch
import torch.nn as nn
from mmengine.config import Config

from ..apis import init_model
from ..compat import require_torch
from ..fileio import replace_atomically
from .graphs import UnsupportedModelError, build_graph
from .preprocessing import preprocessing_of, sidecar_path, write_sidecar


def export_model(config: str, checkpoint: Optional[str], out: str, opset: int = 18, deploy: bool = False,
                 cfg_options: Optional[dict] = None,
                 example_size=(256, 320)) -> Tuple[dict, nn.Module]:
    """Write ``out`` (the whole model, batch/height/width dynamic) and ``out.json`` (pre-processing, task,
    class names). Returns the sidecar's content and the PyTorch graph that was exported.

    Raises:
        UnsupportedModelError: the config's model is not one this exporter handles.
        CheckpointMismatchError: the checkpoint's weights do not fit the config's model.
    """
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    require_torch((2, 6), 'Whole-model ONNX export')
    model = init_model(cfg, checkpoint)
    task, graph = build_graph(model)
    if deploy and hasattr(model, 'backbone') and hasattr(model.backbone, 'switch_to_deploy'):
        model.backbone.switch_to_deploy()
    if opset < 16 and task == 'detection':
        raise UnsupportedModelError(f'--opset {opset}: the detector needs opset 16 or later (NonMaxSuppression with '
                                    f'dynamic inputs, GatherND on booleans); use --opset 18')
    height, width = example_size
    batch = 2  # torch.export would take a dimension of size 1 for a constant
    example = (torch.randn(batch, 3, height, width),)
    if task == 'detection':
        example += (torch.tensor([[height, width]] * batch, dtype=torch.float32), torch.ones(batch, 2))
    # Batch, height and width dynamic; torch.export works out their valid ranges itself.
    dynamic = torch.export.Dim.DYNAMIC
    dims = dict(zip(graph.input_names, [{0: dynamic, 2: dynamic, 3: dynamic}] + [{0: dynamic}] * (len(example) - 1)))

    def write(path: Path) -> None:
        with torch.no_grad():
            program = torch.export.export(graph, example, dynamic_shapes=dims, strict=False)
            torch.onnx.export(program, example, str(path), input_names=list(graph.input_names),
                              output_names=list(graph.output_names), opset_version=opset, dynamo=True,
                              external_data=False, verbose=False)

    out = Path(out)
    replace_atomically(write, out)
    model_cfg = dict(cfg.model)
    if not model_cfg.get('data_preprocessor') and cfg.get('data_preprocessor'):
        model_cfg['data_preprocessor'] = cfg.data_preprocessor  # mmpretrain keeps it beside the model
    meta = dataset_meta(cfg)
    if 'masks' in graph.output_names:
        meta['mask_thr_binary'] = float(model.roi_head.test_cfg.get('mask_thr_binary', 0.5))
    fields = dict(task=task, config=str(config), checkpoint=checkpoint, opset=opset,
                  input_names=list(graph.input_names), output_names=list(graph.output_names),
                  preprocessing=preprocessing_of(model_cfg, task), **meta)
    try:
        write_sidecar(str(out), **fields)
    except BaseException:
        out.unlink(missing_ok=True)
        sidecar_path(str(out)).unlink(missing_ok=True)
        raise
    return fields, graph


def dataset_meta(cfg: Config) -> dict:
    """Class names and palette of the config's test set: its ``metainfo``, else its data set class's."""
    from mmengine.registry import DATASETS, DefaultScope

    dataset = cfg.get('test_dataloader', {}).get('dataset', {})
    metainfo = dict(dataset.get('metainfo') or {})
    if 'classes' not in metainfo and dataset.get('type'):
        with DefaultScope.overwrite_default_scope(cfg.get('default_scope')):
            dataset_class = DATASETS.get(dataset['type'])
        metainfo = dict(getattr(dataset_class, 'METAINFO', {}), **metainfo)
    classes = metainfo.get('classes')
    palette = metainfo.get('palette')
    return dict(classes=list(classes) if classes else None,
                palette=[list(c) for c in palette] if palette and not isinstance(palette, str) else None)


__all__ = ['UnsupportedModelError', 'export_model']
