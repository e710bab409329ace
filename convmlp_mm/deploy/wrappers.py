"""Wrappers that give a model the tensor-in, tensors-out form exporters, analysers and benchmarks run."""
from typing import Tuple

import torch
import torch.nn as nn


class TensorNetwork(nn.Module):
    """The tensor-in, tensors-out part of a model that a benchmark runs (and mmengine's analysis traces)."""

    def __init__(self, model: nn.Module, method: str) -> None:
        super().__init__()
        self.model = model
        self.method = method

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        out = self.model(x, mode='tensor') if self.method == 'logits' else self.model.extract_feat(x)
        return tuple(out) if isinstance(out, (list, tuple)) else (out,)
