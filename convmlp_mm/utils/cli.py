"""What the tools do beyond mmengine's Runner, for all three libraries: config changes for
tools/train.py and tools/test.py, and clean exits on user errors for every tool."""
import argparse
import os.path as osp
import sys
from typing import Callable, Optional

import torch
from mmengine.config import Config, ConfigDict
from mmengine.device import get_device
from mmengine.evaluator import BaseMetric

from ..engine import check_precision, latest_valid_checkpoint, named_checkpoint
from ..engine.precision import parse_dtype
from ..errors import ToolArgumentError, UserError
from .data_check import check_dataset_paths


def run_main(main: Callable[[], None]) -> None:
    """Run a tool's ``main``; a :class:`~convmlp_mm.errors.UserError` ends it with its message and exit code 1."""
    try:
        main()
    except UserError as err:
        print(f'error: {err}', file=sys.stderr)
        sys.exit(1)


def default_work_dir(config_path: str) -> str:
    return osp.join('work_dirs', osp.splitext(osp.basename(config_path))[0])


_FLAG = {'bfloat16': 'bf16', 'float16': 'fp16'}


def add_precision_flags(parser: argparse.ArgumentParser) -> None:
    """``--bf16``/``--fp16`` (stored as ``precision``): run the network in reduced precision."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument('--bf16', dest='precision', action='store_const', const='bfloat16',
                       help='run the network in bf16 (CPUs with avx512_bf16 or AMX; CUDA GPUs from sm80)')
    group.add_argument('--fp16', dest='precision', action='store_const', const='float16',
                       help='run the network in fp16 (CUDA GPUs)')


def checked_precision(precision: Optional[str], device: Optional[str] = None) -> Optional[str]:
    """``precision`` from :func:`add_precision_flags`, once ``device`` (by default the one the Runner
    picks) is known to run it natively."""
    if precision is not None:
        device_type = torch.device(device).type if device else get_device()
        check_precision(device_type, parse_dtype(precision), f'--{_FLAG[precision]}')
    return precision


def amp_optim_wrapper(optim_wrapper: ConfigDict, dtype: Optional[str] = None) -> ConfigDict:
    """The config's optimizer wrapper for ``--amp [--amp-dtype D]``.

    CUDA: mmengine's AmpOptimWrapper, fp16 with dynamic loss scaling unless ``dtype`` is ``'bfloat16'``.
    CPU: convmlp_mm's AutocastOptimWrapper in bf16 (mmengine's refuses CPUs; bf16 needs no loss scaling).
    """
    device = get_device()
    dtype = dtype or ('bfloat16' if device == 'cpu' else 'float16')
    check_precision(device, parse_dtype(dtype), f'--amp ({_FLAG[dtype]})')
    if optim_wrapper.get('type', 'OptimWrapper') in ('AmpOptimWrapper', 'convmlp_mm.AutocastOptimWrapper'):
        return optim_wrapper
    if device == 'cpu':
        return ConfigDict(optim_wrapper, type='convmlp_mm.AutocastOptimWrapper', dtype=dtype)
    return ConfigDict(optim_wrapper, type='AmpOptimWrapper', dtype=dtype, loss_scale='dynamic')


def test_config(config: str, checkpoint: str, cfg_options: Optional[dict] = None, work_dir: Optional[str] = None,
                precision: Optional[str] = None) -> Config:
    """The config that ``tools/test.py`` runs: ``checkpoint`` loaded, the test loop in ``precision``
    (``--bf16``/``--fp16``), dataset paths checked. A ``.onnx`` checkpoint
    (``tools/deployment/export_onnx.py``) replaces the config's model: onnxruntime runs it, with the
    config's data pipeline and evaluator."""
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    cfg.work_dir = work_dir or cfg.get('work_dir') or default_work_dir(config)
    if not osp.isfile(checkpoint):
        raise ToolArgumentError(f'checkpoint {checkpoint} does not exist')
    if checkpoint.endswith('.onnx'):
        if precision is not None:
            raise ToolArgumentError(f'--{_FLAG[precision]}: an ONNX model runs in the precision it was exported in')
        cfg.model = dict(type='convmlp_mm.OnnxRuntimeModel', onnx_file=checkpoint)
        check_dataset_paths(cfg, ['test_dataloader'])
        return cfg
    cfg.load_from = checkpoint
    if checked_precision(precision) is not None:
        cfg.test_cfg = dict(cfg.get('test_cfg') or {}, type='convmlp_mm.AutocastTestLoop', dtype=precision)
    check_dataset_paths(cfg, ['test_dataloader'])
    return cfg


def resume_checkpoint(work_dir: str) -> Optional[str]:
    """The newest whole checkpoint in ``work_dir`` for ``--resume`` without a path; a truncated one that
    ``last_checkpoint`` names (a crash while saving, with another file backend) is skipped, saying so."""
    found = latest_valid_checkpoint(work_dir)
    named = named_checkpoint(work_dir)
    if named and found != named:
        print(f'warning: {named} (named in {osp.join(work_dir, "last_checkpoint")}) is missing or incomplete; '
              f'resuming from {found or "scratch"} instead', file=sys.stderr)
    return found


def prepare_cpu_distributed(cfg: Config) -> None:
    """Let ``--launcher pytorch`` (torchrun, tools/dist_train.sh) run on machines without CUDA.

    mmengine's launcher assumes GPUs: it calls ``torch.cuda.set_device`` and gives DDP a device id. Without
    CUDA, start the gloo process group here (the Runner then skips its own start) and wrap the model in DDP
    without device ids. Nothing changes where CUDA is available.
    """
    if cfg.launcher == 'none' or torch.cuda.is_available():
        return
    if cfg.launcher != 'pytorch':
        raise ToolArgumentError(f'--launcher {cfg.launcher} needs CUDA; on CPUs use --launcher pytorch (torchrun, '
                         f'tools/dist_train.sh)')
    import torch.distributed as dist
    cfg.env_cfg.setdefault('dist_cfg', {})['backend'] = 'gloo'
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel', broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper.setdefault('device_ids', None)
    cfg.model_wrapper_cfg = wrapper


def add_tensorboard(cfg: Config) -> None:
    """Add mmengine's TensorBoard backend to the config's visualizer, beside the backends it has."""
    visualizer = cfg.get('visualizer')
    if visualizer is None:
        raise ToolArgumentError('--tensorboard: the config defines no visualizer to log through')
    backends = list(visualizer.get('vis_backends') or [])
    if not any(b.get('type', '').endswith('TensorboardVisBackend') for b in backends):
        backends.append(dict(type='TensorboardVisBackend'))
    visualizer.vis_backends = backends


# Where each library's visualization hook takes its switches (they differ between libraries), and what
# else it needs to draw every test image.
_VIS_HOOKS = {
    'DetVisualizationHook': ('draw', 'test_out_dir', {}),
    # mmseg writes to the visualizer's save_dir, and would draw only every 50th test image.
    'SegVisualizationHook': ('draw', None, {'interval': 1}),
    'VisualizationHook': ('enable', 'out_dir', {}),  # mmpretrain
}


def enable_visualization(cfg: Config, show_dir: str, show: bool, wait_time: float) -> None:
    """Switch on the config's visualization hook so that predictions are drawn to ``show_dir``."""
    hook = cfg.default_hooks.get('visualization')
    hook_type = hook.get('type', '').split('.')[-1] if hook else None
    if hook_type not in _VIS_HOOKS:
        raise ToolArgumentError(f'--show/--show-dir need a visualization hook in default_hooks, one of '
                         f'{sorted(_VIS_HOOKS)}; this config has {hook_type!r}')
    switch, out_key, extra = _VIS_HOOKS[hook_type]
    hook[switch] = True
    hook.update(extra)
    if show:
        hook['show'], hook['wait_time'] = True, wait_time
    if show_dir:
        if out_key is None:
            cfg.visualizer['save_dir'] = show_dir
        else:
            # An absolute path, or the hook puts it under the run's timestamped work dir.
            hook[out_key] = osp.abspath(show_dir)


def results_dumper(cfg: Config, out_file: str) -> BaseMetric:
    """A metric that writes the raw predictions to ``out_file`` (mmdet's encodes masks compactly)."""
    if not out_file.endswith(('.pkl', '.pickle')):
        raise ToolArgumentError(f'--out {out_file}: the output file must be a .pkl or .pickle file')
    if cfg.get('default_scope') == 'mmdet':
        from mmdet.evaluation import DumpDetResults
        return DumpDetResults(out_file_path=out_file)
    from mmengine.evaluator import DumpResults
    return DumpResults(out_file_path=out_file)
