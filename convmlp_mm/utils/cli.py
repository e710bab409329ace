"""What the tools do beyond mmengine's Runner, for all three libraries: config changes for
tools/train.py and tools/test.py, and clean exits on user errors for every tool."""
import os.path as osp
import sys
from typing import Callable, Optional

import torch
from mmengine.config import Config, ConfigDict
from mmengine.evaluator import BaseMetric

from ..checkpoint_safety import UnsafeCheckpointError
from ..datasets.transforms import LabelOutOfRangeError
from ..engine import NonFiniteLossError, latest_valid_checkpoint, named_checkpoint
from ..models.official import NotConvMLPCheckpointError
from ..models.pretrained import PretrainedWeightsError
from .data_check import BadAnnotationFileError, DatasetNotFoundError

#: Errors whose message already says what is wrong and what to do: shown without a traceback.
USER_ERRORS = (BadAnnotationFileError, DatasetNotFoundError, LabelOutOfRangeError, NonFiniteLossError,
               NotConvMLPCheckpointError, PretrainedWeightsError, UnsafeCheckpointError)


def run_main(main: Callable[[], None]) -> None:
    """Run a tool's ``main``; a :data:`USER_ERRORS` error ends it with its message and exit code 1."""
    try:
        main()
    except USER_ERRORS as err:
        print(f'error: {err}', file=sys.stderr)
        sys.exit(1)


def default_work_dir(config_path: str) -> str:
    return osp.join('work_dirs', osp.splitext(osp.basename(config_path))[0])


def amp_optim_wrapper(optim_wrapper: ConfigDict) -> ConfigDict:
    """The config's optimizer wrapper turned into mmengine's AmpOptimWrapper."""
    if not torch.cuda.is_available():
        raise SystemExit('--amp needs a CUDA GPU, and none is visible here (torch.cuda.is_available() is '
                         "False; mmengine's AmpOptimWrapper does not run on the CPU). Drop --amp to train "
                         'in fp32.')
    if optim_wrapper.get('type', 'OptimWrapper') == 'AmpOptimWrapper':
        return optim_wrapper
    return ConfigDict(optim_wrapper, type='AmpOptimWrapper', loss_scale='dynamic')


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
        raise SystemExit(f'--launcher {cfg.launcher} needs CUDA; on CPUs use --launcher pytorch (torchrun, '
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
        raise SystemExit('--tensorboard: the config defines no visualizer to log through')
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
        raise SystemExit(f'--show/--show-dir need a visualization hook in default_hooks, one of '
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
        raise SystemExit(f'--out {out_file}: the output file must be a .pkl or .pickle file')
    if cfg.get('default_scope') == 'mmdet':
        from mmdet.evaluation import DumpDetResults
        return DumpDetResults(out_file_path=out_file)
    from mmengine.evaluator import DumpResults
    return DumpResults(out_file_path=out_file)
