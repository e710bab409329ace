"""The benchmark's other runtimes (onnxruntime, OpenVINO, inductor: convmlp_mm/utils/runtimes.py) run the same
weights and give the eager model's outputs, so that the side-by-side table compares like with like. No timing is
asserted: speed is for tools/analysis_tools/benchmark.py."""
import sys

import pytest
import torch

from convmlp_mm.compat import cpu_has_bf16_instructions
from convmlp_mm.utils.benchmark import build_target

pytestmark = pytest.mark.e2e
X = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(0))


def outputs(target: str, dtype=None):
    torch.manual_seed(0)  # the same random weights in every target
    model = build_target(target, example=X)
    with torch.no_grad(), torch.autocast('cpu', dtype=dtype or torch.bfloat16, enabled=dtype is not None):
        return [out.float() for out in model(X)]


def relative_error(got, want) -> float:
    assert [g.shape for g in got] == [w.shape for w in want]
    return max(float((g - w).abs().max() / w.abs().max()) for g, w in zip(got, want))


@pytest.mark.parametrize('runtime', ['ort', 'openvino', 'inductor'])
def test_runtime_targets_give_the_eager_outputs(runtime):
    pytest.importorskip({'ort': 'onnxruntime', 'openvino': 'openvino', 'inductor': 'torch'}[runtime])
    want = outputs('convmlp-s:plain')
    assert len(want) == 4 and relative_error(outputs(f'convmlp-s:{runtime}'), want) <= 1e-4


@pytest.mark.parametrize('runtime', ['openvino', 'inductor'])
def test_bf16_runtime_targets_stay_within_bf16_rounding(runtime):
    """bf16 keeps 8 bits of mantissa; through ConvMLP-S the outputs stay within a few percent of
    fp32, and (where the CPU computes in bf16 natively; OpenVINO runs f32 elsewhere) further than fp32 rounding."""
    pytest.importorskip({'openvino': 'openvino', 'inductor': 'torch'}[runtime])
    want = outputs('convmlp-s:plain')
    error = relative_error(outputs(f'convmlp-s:{runtime}-bf16', torch.bfloat16), want)
    assert error <= 0.05
    if cpu_has_bf16_instructions():
        assert error > 1e-3, 'computed in fp32, not in bf16'


def test_runtime_targets_refuse_what_they_do_not_measure(monkeypatch):
    with pytest.raises(ValueError, match=r"'convmlp-s:ort'.*inference on the CPU.*'train'"):
        build_target('convmlp-s:ort', mode='train', example=X)
    monkeypatch.setitem(sys.modules, 'openvino', None)  # as if not installed
    with pytest.raises(ImportError, match='pip install openvino'):
        build_target('convmlp-s:openvino', example=X)
