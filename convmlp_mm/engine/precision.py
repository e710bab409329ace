"""Reduced precision (bf16, fp16) for testing, inference and training, on CPUs and GPUs.

The network (backbone, neck, heads) runs under ``torch.autocast``; what the heads' outputs go through
afterwards (box decoding, NMS, RoIAlign, mask pasting, resizing, softmax) and the losses get fp32 tensors,
because mmcv's compiled ops take fp32 only and box coordinates need more than bf16's 8 bits. Where the
device has no native arithmetic in the dtype, everything here refuses with the reason instead of running
an emulation many times slower than fp32.
"""
import functools
import logging
from contextlib import contextmanager, nullcontext
from typing import Iterator, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmengine.device import get_device
from mmengine.logging import print_log
from mmengine.optim import OptimWrapper
from mmengine.runner import TestLoop
from mmengine.runner.loops import _update_losses

from ..compat import cpu_has_bf16_instructions, cuda_has_native_bf16
from ..errors import UserError
from ..models import ConvMLP
from ..models.kernels import cpu_matmul_rates
from ..registry import register_loop, register_optim_wrapper

DTYPES = {'bfloat16': torch.bfloat16, 'bf16': torch.bfloat16, 'float16': torch.float16, 'fp16': torch.float16}


class UnsupportedPrecisionError(UserError, RuntimeError):
    """The device cannot run the requested dtype natively (the message says why and what to do)."""


def parse_dtype(dtype: Union[str, torch.dtype]) -> torch.dtype:
    """``'bfloat16'``/``'bf16'``/``'float16'``/``'fp16'`` (or the torch dtype) as a torch dtype."""
    if isinstance(dtype, torch.dtype) and dtype in DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype.lower() in DTYPES:
        return DTYPES[dtype.lower()]
    raise ValueError(f'unknown reduced-precision dtype {dtype!r}; choose one of {sorted(DTYPES)}')


def unsupported_reason(device_type: str, dtype: torch.dtype) -> Optional[str]:
    """Why ``device_type`` cannot compute in ``dtype`` natively, or None when it can."""
    name = 'bf16' if dtype == torch.bfloat16 else 'fp16'
    if device_type == 'cuda':
        if not torch.cuda.is_available():
            return 'no CUDA GPU is visible'
        if dtype == torch.bfloat16 and not cuda_has_native_bf16():
            major, minor = torch.cuda.get_device_capability()
            return (f'{torch.cuda.get_device_name()} (compute capability {major}.{minor}) has no bf16 tensor cores; '
                    f'they start at 8.0 (A100, RTX 30xx); use fp16 on this GPU')
        return None
    if device_type == 'cpu':
        if dtype == torch.float16:
            return 'fp16 runs natively on GPUs only; on CPUs with avx512_bf16 or AMX use bf16'
        if not cpu_has_bf16_instructions():
            return ('this CPU has neither avx512_bf16 nor amx_bf16 (see the flags in /proc/cpuinfo), so bf16 would '
                    'be emulated, many times slower than fp32')
        return None
    return f'{name} is only set up here for CPUs and CUDA GPUs, not {device_type!r}'


def check_precision(device_type: str, dtype: torch.dtype, what: str) -> None:
    """Raise :class:`UnsupportedPrecisionError` naming ``what`` if the device cannot run ``dtype`` natively;
    on a CPU whose bf16 is slower than its fp32, say so once (:func:`warn_if_bf16_is_slower`)."""
    reason = unsupported_reason(device_type, dtype)
    if reason is not None:
        name = 'bf16' if dtype == torch.bfloat16 else 'fp16'
        raise UnsupportedPrecisionError(f'{what}: {name} is not available on this {device_type.upper()}: {reason}. '
                                        f'Run without it, in fp32.')
    if device_type == 'cpu' and dtype == torch.bfloat16:
        warn_if_bf16_is_slower()


def bf16_slower_message() -> Optional[str]:
    """One line with this CPU's fp32 and bf16 matmul rates if bf16 is the slower one, else None."""
    fp32, bf16 = cpu_matmul_rates()
    if bf16 >= fp32:
        return None
    return (f'bf16 will be slower than fp32 on this CPU: a 1024x1024 matmul runs at {bf16:.0f} GFLOP/s in bf16 '
            f'against {fp32:.0f} in fp32 (it has bf16 instructions but no fast bf16 units such as AMX); '
            f'run in fp32 for speed')


@functools.lru_cache(maxsize=None)
def warn_if_bf16_is_slower() -> None:
    """Log :func:`bf16_slower_message` once per process, where it applies."""
    message = bf16_slower_message()
    if message is not None:
        print_log(message, logger='current', level=logging.WARNING)


def _to_fp32(outputs):
    """``outputs`` (tensors, possibly in tuples, lists and dicts) with bf16/fp16 tensors cast to fp32."""
    if isinstance(outputs, torch.Tensor):
        return outputs.float() if outputs.dtype in (torch.bfloat16, torch.float16) else outputs
    if isinstance(outputs, (tuple, list)):
        return type(outputs)(_to_fp32(o) for o in outputs)
    if isinstance(outputs, dict):
        return type(outputs)((k, _to_fp32(v)) for k, v in outputs.items())
    return outputs


def _feeds_post_processing(name: str, module: nn.Module) -> bool:
    # The neck (whose levels RoIAlign reads), every head (OpenMMLab names them head, *_head and their classes
    # *Head), and mmseg's last classifier conv, because mmseg's heads call their own forward() directly,
    # which skips hooks.
    last = name.rsplit('.', 1)[-1]
    return (last in ('neck', 'head', 'conv_seg') or last.endswith('_head')
            or type(module).__name__.endswith('Head'))


@contextmanager
def inference_weights(model: nn.Module, dtype: Union[str, torch.dtype]) -> Iterator[None]:
    """For the length of an inference job in ``dtype`` (a test loop, a run of an inferencer), hold the
    parameters of ``model``'s ConvMLP backbones in eval mode in ``dtype``, so that their inference form (which
    runs in bf16 under bf16 autocast) does not cast them in every call: 12% of ConvMLP-S's bf16 time at batch
    1, 320x256. The fp32 parameters are put back, unchanged, when the job ends; the BatchNorm statistics
    (buffers) stay fp32."""
    dtype = parse_dtype(dtype)
    held = []
    for module in model.modules():
        if isinstance(module, ConvMLP) and not module.training and (module.fast_inference or module.deploy):
            for param in module.parameters():
                if param.dtype != dtype:
                    held.append((param, param.data))
                    param.data = param.data.to(dtype)
    try:
        yield
    finally:
        for param, data in held:
            param.data = data


@contextmanager
def mixed_precision(model: nn.Module, dtype: Union[str, torch.dtype] = 'bfloat16',
                    device_type: Optional[str] = None) -> Iterator[None]:
    """Run ``model``'s network under autocast to ``dtype`` and hand fp32 on to its post-processing.

    Usable around an inferencer's call (``with mixed_precision(inferencer.model): inferencer(img)``), a
    ``test_step`` or a training step. The outputs of the neck, of the heads and of mmseg's ``conv_seg`` are
    cast back to fp32. A model in eval mode holds its ConvMLP weights in ``dtype`` meanwhile
    (:func:`inference_weights`).

    Args:
        model (nn.Module): An OpenMMLab detector, segmentor or classifier (or a wrapper of one).
        dtype (str | torch.dtype): ``'bfloat16'`` or ``'float16'``. Defaults to ``'bfloat16'``.
        device_type (str, optional): ``'cpu'`` or ``'cuda'``; by default the device of the model's
            parameters.

    Raises:
        UnsupportedPrecisionError: the device has no native arithmetic in ``dtype``.
    """
    dtype = parse_dtype(dtype)
    device_type = device_type or next(model.parameters()).device.type
    check_precision(device_type, dtype, 'mixed_precision')
    handles = [module.register_forward_hook(lambda _module, _inputs, outputs: _to_fp32(outputs))
               for name, module in model.named_modules() if _feeds_post_processing(name, module)]
    try:
        with torch.autocast(device_type, dtype=dtype), \
                (inference_weights(model, dtype) if not model.training else nullcontext()):
            yield
    finally:
        for handle in handles:
            handle.remove()


@register_loop
class AutocastTestLoop(TestLoop):
    """mmengine's ``TestLoop`` with the network in bf16 or fp16 (see :func:`mixed_precision`).

    ``test_cfg = dict(type='convmlp_mm.AutocastTestLoop', dtype='bfloat16')`` in a config, or
    ``--bf16``/``--fp16`` of ``tools/test.py``. (mmengine's own ``fp16=True`` picks bf16 on CPUs and fp16 on
    GPUs, and sends bf16 boxes into mmcv's fp32-only NMS.)

    Args:
        runner (Runner): The runner.
        dataloader (DataLoader | dict): The test dataloader or its config.
        evaluator (Evaluator | dict | list): The evaluator or its config.
        dtype (str): ``'bfloat16'`` or ``'float16'``. Defaults to ``'bfloat16'``.
        fp16 (bool): Ignored (mmengine's switch, which ``dtype`` replaces); accepted so that configs that
            set it still build. Defaults to False.
    """

    def __init__(self, runner, dataloader, evaluator, dtype: str = 'bfloat16', fp16: bool = False) -> None:
        self.dtype = parse_dtype(dtype)
        self.device_type = get_device()
        check_precision(self.device_type, self.dtype, f'test_cfg.dtype={dtype!r}')
        super().__init__(runner, dataloader, evaluator)

    def run(self) -> dict:
        # The weights are cast once for the whole test, not in every iteration's mixed_precision.
        self.runner.model.eval()
        with inference_weights(self.runner.model, self.dtype):
            return super().run()

    @torch.no_grad()
    def run_iter(self, idx: int, data_batch: Sequence[dict]) -> None:
        # TestLoop.run_iter with mixed_precision in place of its autocast(enabled=fp16), which would
        # switch autocast off when fp16 is False.
        self.runner.call_hook('before_test_iter', batch_idx=idx, data_batch=data_batch)
        model = self.runner.model
        with mixed_precision(model, self.dtype, self.device_type):
            outputs = model.test_step(data_batch)
        outputs, self.test_loss = _update_losses(outputs, self.test_loss)
        self.evaluator.process(data_samples=outputs, data_batch=data_batch)
        self.runner.call_hook('after_test_iter', batch_idx=idx, data_batch=data_batch, outputs=outputs)


@register_optim_wrapper
class AutocastOptimWrapper(OptimWrapper):
    """mmengine's ``OptimWrapper`` with the forward pass in bf16 (or fp16) through :func:`mixed_precision`,
    for CPUs, where mmengine's ``AmpOptimWrapper`` does not run. No loss scaling: bf16 has fp32's range.
    ``tools/train.py --amp`` picks it on CPUs with native bf16.

    Args:
        dtype (str): ``'bfloat16'``, or ``'float16'`` (on CUDA; with fp16, prefer ``AmpOptimWrapper``,
            which scales the loss). Defaults to ``'bfloat16'``.
        **kwargs: ``OptimWrapper``'s arguments (``optimizer``, ``accumulative_counts``, ``clip_grad``).
    """

    def __init__(self, dtype: str = 'bfloat16', **kwargs) -> None:
        self.dtype = parse_dtype(dtype)
        self.device_type = get_device()
        check_precision(self.device_type, self.dtype, f'optim_wrapper.dtype={dtype!r}')
        super().__init__(**kwargs)

    @contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        with super().optim_context(model), mixed_precision(model, self.dtype, self.device_type):
            yield
