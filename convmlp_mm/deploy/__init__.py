"""Deployment: whole models (network and post-processing) exported to ONNX and run with onnxruntime."""
from .compare import pair_detections
from .export import export_model
from .graphs import UnsupportedModelError, build_graph
from .preprocessing import SidecarError
from .runtime import OnnxRuntimeModel
from .wrappers import TensorNetwork

__all__ = ['OnnxRuntimeModel', 'SidecarError', 'TensorNetwork', 'UnsupportedModelError', 'build_graph', 'export_model',
           'pair_detections']
