"""torch module -> ONNX file with torch's dynamo exporter (opset >= 18), external data in one file."""

from __future__ import annotations

import inspect
import logging
import warnings
from pathlib import Path

import numpy as np
import torch

from ..bundle import IOSpec
from ..errors import LeRobotEdgeError

log = logging.getLogger(__name__)
MIN_OPSET = 18


def export_onnx(module: torch.nn.Module, example: dict[str, np.ndarray], inputs: list[IOSpec],
                outputs: list[IOSpec], path: Path, opset: int = MIN_OPSET) -> list[str]:
    """Trace `module(*inputs)` and write `path` (+ `path.data` when weights are external).

    `example` must use batch >= 2 where an axis is dynamic: a batch-1 example silently fixes the axis at 1.
    Returns the files written, relative to `path.parent`.
    """
    if opset < MIN_OPSET:
        raise ValueError(f"opset {opset}: the dynamo exporter needs opset >= {MIN_OPSET} (at 17 it writes "
                         "files ONNX Runtime rejects, without raising)")
    args = tuple(torch.from_numpy(example[i.name]) for i in inputs)
    dims: dict[str, object] = {}
    dynamic_shapes = tuple({ax: dims.setdefault(s, torch.export.Dim(s)) for ax, s in enumerate(i.shape)
                            if isinstance(s, str)} or None for i in inputs)
    if _takes_varargs(module):  # forward(*inputs): torch.export sees one tuple argument
        dynamic_shapes = (dynamic_shapes,)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        try:
            program = torch.onnx.export(module, args, dynamo=True, opset_version=opset,
                                        input_names=[i.name for i in inputs],
                                        output_names=[o.name for o in outputs],
                                        dynamic_shapes=dynamic_shapes, optimize=True, verbose=False)
        except Exception as e:
            raise LeRobotEdgeError(f"ONNX export of {path.name} failed: {type(e).__name__}: {e}") from e
    path.parent.mkdir(parents=True, exist_ok=True)
    data = path.with_name(path.name + ".data")
    program.save(str(path), external_data=True)
    _check(path)
    return [path.name] + ([data.name] if data.exists() else [])


def _takes_varargs(module: torch.nn.Module) -> bool:
    params = inspect.signature(module.forward).parameters.values()
    return any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params)


def _check(path: Path) -> None:
    import onnx

    try:
        onnx.checker.check_model(str(path))  # the path form handles external data and > 2 GB
    except Exception as e:
        raise LeRobotEdgeError(f"{path.name}: exported ONNX fails onnx.checker: {e}") from e
