"""The runtimes a user would pick instead of our eager path, as benchmark targets on the same weights: onnxruntime and
OpenVINO on an ONNX file exported from the model (TorchScript exporter, opset 17, the benchmark input's fixed shape),
and inductor (``torch.compile`` with weight freezing, which packs convolution and linear weights for oneDNN ahead of
time). Each keeps the eager model it was made from, whose parameters and MACs the benchmark counts.

onnxruntime and OpenVINO are optional (requirements/optional.txt); a target whose runtime is missing says which
package to install.
"""
import importlib
import tempfile
from pathlib import Path
from typing import Callable, Optional, Tuple

import torch
import torch.nn as nn

from ..compat import torchscript_onnx_export_kwargs

RUNTIMES = ('ort', 'openvino', 'inductor')


class RuntimeModel(nn.Module):
    """A runtime's compiled form of ``source``, called like it on a CPU tensor (outputs as a tuple of tensors)."""

    def __init__(self, source: nn.Module, run: Callable[[torch.Tensor], Tuple[torch.Tensor, ...]]):
        super().__init__()
        self.source = source
        self._run = run

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        return self._run(x)


def export_onnx(model: nn.Module, x: torch.Tensor, path: Path) -> Path:
    """``model`` traced on ``x`` to ONNX (opset 17) with the TorchScript exporter: what the peers' users export with,
    and what torch >= 2.9 keeps behind ``dynamo=False``."""
    with torch.no_grad():
        torch.onnx.export(model, (x,), str(path), opset_version=17, input_names=['input'],
                          **torchscript_onnx_export_kwargs())
    return path


def _require(module: str, package: str):
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f'the {package} benchmark targets need `pip install {package}` '
                          f'(requirements/optional.txt)') from err


def build_runtime(source: nn.Module, runtime: str, x: torch.Tensor, precision: Optional[torch.dtype] = None,
                  threads: Optional[int] = None) -> RuntimeModel:
    """``source`` (in eval mode, on the CPU) compiled by ``runtime`` for inputs shaped like ``x``; ``precision``
    bf16 asks OpenVINO for bf16 inference (inductor runs under the caller's autocast; onnxruntime is fp32 only)."""
    if runtime not in RUNTIMES:
        raise ValueError(f'unknown runtime {runtime!r}; choose one of {list(RUNTIMES)}')
    threads = threads or torch.get_num_threads()
    if runtime == 'inductor':
        compiled = torch.compile(source, options={'freezing': True})
        return RuntimeModel(source, compiled)
    if runtime == 'ort' and precision not in (None, torch.float32):
        raise ValueError(f'onnxruntime runs these models in fp32 only, not {precision}')
    with tempfile.TemporaryDirectory() as folder:
        onnx = export_onnx(source, x, Path(folder) / 'model.onnx')
        if runtime == 'ort':
            ort = _require('onnxruntime', 'onnxruntime')
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            session = ort.InferenceSession(str(onnx), options, providers=['CPUExecutionProvider'])

            def run_ort(inputs: torch.Tensor) -> Tuple[torch.Tensor, ...]:
                return tuple(torch.from_numpy(out) for out in session.run(None, {'input': inputs.numpy()}))
            return RuntimeModel(source, run_ort)
        ov = _require('openvino', 'openvino')
        hint = 'bf16' if precision == torch.bfloat16 else 'f32'
        compiled = ov.Core().compile_model(str(onnx), 'CPU', {'INFERENCE_PRECISION_HINT': hint,
                                                              'INFERENCE_NUM_THREADS': threads,
                                                              'PERFORMANCE_HINT': 'LATENCY'})

    def run_openvino(inputs: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        results = compiled(inputs.numpy())
        return tuple(torch.from_numpy(results[out]) for out in compiled.outputs)
    return RuntimeModel(source, run_openvino)
