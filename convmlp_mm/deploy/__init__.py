"""Deployment: whole models (network and post-processing) exported to ONNX and run with onnxruntime."""
from .compare import pair_detections
from .export import CheckpointMismatchError, export_model, load_model
from .graphs import UnsupportedModelError, build_graph
from .preprocessing import SidecarError
from .runtime import OnnxRuntimeModel

__all__ = ['CheckpointMismatchError', 'OnnxRuntimeModel', 'SidecarError', 'UnsupportedModelError', 'build_graph',
           'export_model', 'load_model', 'pair_detections']
