"""lerobot-edge: LeRobot policies exported to ONNX / OpenVINO / TensorRT and run without torch.

`import lerobot_edge` and `load_policy` never import torch; `export` imports it when called.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__", "available_policies", "export", "load_policy"]


def __getattr__(name: str):  # PEP 562: keep the robot side torch-free
    if name == "load_policy":
        from .runtime import load_policy
        return load_policy
    if name == "export":
        from .api import export
        return export
    if name == "available_policies":
        from .policies import available_policies
        return available_policies
    raise AttributeError(f"module 'lerobot_edge' has no attribute {name!r}")
