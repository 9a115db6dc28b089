"""`lerobot-edge triton BUNDLE REPO_DIR`: a Triton model repository for NVIDIA's own server (NGC container,
Jetson), from any bundle.

    REPO_DIR/
      <name>/            backend "python": our numpy runtime (normalization, sampler/Euler loop, RTC) around the
        config.pbtxt     graph models, called by BLS; the chunk model of serving/protocol.py, so RemotePolicy
        1/model.py       and `lerobot-edge run --remote` talk to it as to `lerobot-edge serve`
        1/bundle/        the bundle's common files (manifest, checksums, stats, tokenizer)
      <name>_info/       backend "python": the manifest for RemotePolicy
      <name>_<graph>/    one per graph on its native backend: onnxruntime_onnx (ONNX), openvino (IR),
        config.pbtxt     tensorrt_plan (where an engine built on the device is given); IO names, dtypes and dims
        1/<files>        from the manifest, dynamic batching where the batch axis leads, instance groups

The Python models import lerobot_edge: install it in the server's Python (`pip install lerobot-edge`).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Mapping

from ..bundle import CHECKSUMS, MANIFEST, Bundle, GraphSpec
from ..errors import BundleError
from ..registry import runtime_class
from . import protocol as P

BACKENDS = ("onnxruntime_onnx", "openvino", "tensorrt_plan")
TRITON_TYPES = {"float32": "TYPE_FP32", "float16": "TYPE_FP16", "bfloat16": "TYPE_BF16", "float64": "TYPE_FP64",
                "int64": "TYPE_INT64", "int32": "TYPE_INT32", "int8": "TYPE_INT8", "uint8": "TYPE_UINT8",
                "bool": "TYPE_BOOL"}
NUMPY_TYPES = {"float32": "TYPE_FP32", "uint8": "TYPE_UINT8", "int32": "TYPE_INT32", "bytes_": "TYPE_STRING",
               "str_": "TYPE_STRING"}
MODEL_PY = '''"""Triton Python backend: lerobot-edge's numpy runtime around the graph models (BLS). Written by
`lerobot-edge triton`; needs `pip install lerobot-edge` in the server's Python."""
from lerobot_edge.serving.triton_python import {cls} as TritonPythonModel  # noqa: F401
'''


def _dims(shape) -> list[int]:
    return [-1 if isinstance(d, str) else int(d) for d in shape]


def _batch_first(graph: GraphSpec) -> bool:
    """Triton's batching needs the batch axis first on every input and output (pi0's KV cache has it second)."""
    ios = [*graph.inputs, *graph.outputs]
    return all(len(io.shape) > 0 and isinstance(io.shape[0], str) and
               not any(isinstance(d, str) for d in io.shape[1:]) for io in ios) if ios else False


def _tensor_block(kind: str, name: str, dtype: str, dims: list[int], optional: bool = False) -> str:
    """One input/output entry; a per-row scalar (a graph shape of just the batch axis) is dims [1] reshaped
    to [] (Triton's way to feed (B,) to a graph)."""
    extra = "\n    reshape: { shape: [ ] }" if not dims else ""
    extra += "\n    optional: true" if optional else ""
    return (f'  {{\n    name: "{name}"\n    data_type: {dtype}\n    dims: [ {", ".join(map(str, dims or [1]))} ]'
            f"{extra}\n  }}")


def config_pbtxt(name: str, backend: str, inputs: list[tuple], outputs: list[tuple], *, max_batch: int,
                 queue_delay_us: int, instances: int, kind: str, default_file: str | None = None,
                 parameters: Mapping[str, str] | None = None, accelerator: str | None = None) -> str:
    """A config.pbtxt (Triton's ModelConfig in protobuf text format). inputs/outputs: (name, TYPE_*, dims
    without the batch axis when max_batch > 0[, optional])."""
    lines = [f'name: "{name}"', f'backend: "{backend}"', f"max_batch_size: {max_batch}"]
    if default_file:
        lines.append(f'default_model_filename: "{default_file}"')
    lines.append("input [\n" + ",\n".join(_tensor_block("input", *t) for t in inputs) + "\n]")
    lines.append("output [\n" + ",\n".join(_tensor_block("output", *t[:3]) for t in outputs) + "\n]")
    if max_batch > 0:
        lines.append(f"dynamic_batching {{\n  max_queue_delay_microseconds: {queue_delay_us}\n}}")
    lines.append(f"instance_group [\n  {{\n    count: {instances}\n    kind: {kind}\n  }}\n]")
    for k, v in (parameters or {}).items():
        lines.append(f'parameters {{\n  key: "{k}"\n  value: {{ string_value: "{v}" }}\n}}')
    if accelerator:
        lines.append("optimization {\n  execution_accelerators {\n    gpu_execution_accelerator : [ { name : "
                     f'"{accelerator}" }} ]\n  }}\n}}')
    return "\n".join(lines) + "\n"


def _graph_backend(bundle: Bundle, graph: GraphSpec, engines: Mapping[str, Path]) -> tuple[str, list[str], str]:
    """-> (Triton backend, bundle files to copy, default_model_filename) for one graph."""
    if graph.name in engines:
        return "tensorrt_plan", [], "model.plan"
    files = bundle.manifest["files"]
    if bundle.manifest["target"] == "openvino" and "openvino" in graph.artifacts:
        xml = graph.artifacts["openvino"]
        stem = xml.rsplit(".", 1)[0]
        return "openvino", [f for f in files.get("openvino", []) if f.rsplit(".", 1)[0] == stem], Path(xml).name
    onnx = [f for f in files.get("onnx", []) if f == graph.file or f.startswith(graph.file + ".")]
    return "onnxruntime_onnx", onnx, Path(graph.file).name


def write_model_repository(bundle: str | Path, repo_dir: str | Path, *, name: str | None = None, max_batch: int = 8,
                           instances: int = 1, queue_delay_us: int = 2000, gpu: bool = False,
                           engines: Mapping[str, str | Path] | None = None, overwrite: bool = False) -> Path:
    """Write the repository (see the module docstring) -> repo_dir. engines: graph name -> a TensorRT engine
    file built on the serving GPU (`lerobot-edge selftest --backend tensorrt` caches them); those graphs
    become tensorrt_plan models. Without one, a trt bundle's graphs run on onnxruntime_onnx with Triton's
    TensorRT accelerator (gpu=True)."""
    if not 0 <= max_batch <= 1024 or instances < 1:
        raise ValueError(f"max_batch={max_batch}, instances={instances}: expected 0..1024 and >= 1")
    b = Bundle.open(bundle)
    repo = Path(repo_dir)
    if repo.exists() and any(repo.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{repo} exists and is not empty (pass overwrite=True / --overwrite)")
        shutil.rmtree(repo)
    engines = {k: Path(v) for k, v in (engines or {}).items()}
    unknown = sorted(set(engines) - set(b.graphs))
    if unknown:
        raise BundleError(f"engines for graph(s) {unknown}, which the bundle does not have ({sorted(b.graphs)})")
    name = P.model_name(bundle, name)
    kind = "KIND_GPU" if gpu else "KIND_CPU"
    for g in b.graphs.values():
        _write_graph_model(b, g, repo / f"{name}_{g.name}", engines, max_batch, queue_delay_us, instances, kind, gpu)
    _write_chunk_model(b, repo, name, max_batch, queue_delay_us, instances)
    return repo


def _write_graph_model(b: Bundle, g: GraphSpec, model_dir: Path, engines, max_batch, delay, instances, kind, gpu):
    backend, files, default = _graph_backend(b, g, engines)
    batch = max_batch if max_batch > 0 and _batch_first(g) else 0
    def io(items):
        out = []
        for t in items:
            if t.dtype not in TRITON_TYPES:
                raise BundleError(f"graph {g.name!r} {t.name}: dtype {t.dtype} has no Triton type")
            out.append((t.name, TRITON_TYPES[t.dtype], _dims(t.shape[1:] if batch else t.shape)))
        return out
    version = model_dir / "1"
    version.mkdir(parents=True)
    for rel in files:
        shutil.copy2(b.file(rel), version / Path(rel).name)
    if backend == "tensorrt_plan":
        shutil.copy2(engines[g.name], version / default)
    accel = "tensorrt" if gpu and backend == "onnxruntime_onnx" and b.manifest["target"] == "trt" else None
    (model_dir / "config.pbtxt").write_text(config_pbtxt(
        model_dir.name, backend, io(g.inputs), io(g.outputs), max_batch=batch, queue_delay_us=delay,
        instances=instances, kind=kind, default_file=default, accelerator=accel))


def _write_chunk_model(b: Bundle, repo: Path, name: str, max_batch: int, delay: int, instances: int) -> None:
    cls = runtime_class(b.manifest["runtime"]["kind"])
    rtc = bool(b.manifest["runtime"].get("rtc"))
    def io(specs):
        return [(s.name, NUMPY_TYPES[s.dtype.__name__], list(s.dims), s.optional) for s in specs]
    version = repo / name / "1"
    (version / "bundle").mkdir(parents=True)
    for rel in [MANIFEST, CHECKSUMS, *b.manifest["files"].get("common", [])]:
        dst = version / "bundle" / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(b.file(rel), dst)
    (version / "model.py").write_text(MODEL_PY.format(cls="ChunkModel"))
    params = {"graph_model_prefix": f"{name}_"}
    (repo / name / "config.pbtxt").write_text(config_pbtxt(
        name, "python", io(P.chunk_inputs(b.manifest, cls.takes_task, rtc)), io(P.chunk_outputs(b.manifest)),
        max_batch=max(max_batch, 1), queue_delay_us=delay, instances=instances, kind="KIND_CPU", parameters=params))
    info = repo / (name + P.INFO_SUFFIX)
    (info / "1").mkdir(parents=True)
    (info / "1" / "model.py").write_text(MODEL_PY.format(cls="InfoModel"))
    (info / "config.pbtxt").write_text(config_pbtxt(
        info.name, "python", [(P.INFO_INPUT, "TYPE_INT32", [1])], [(P.INFO_OUTPUT, "TYPE_STRING", [1])],
        max_batch=0, queue_delay_us=delay, instances=1, kind="KIND_CPU",
        parameters={"bundle_model": name}))


def describe(repo: str | Path) -> list[dict[str, Any]]:
    """[{"model", "backend", "max_batch_size"}] of a written repository (for the CLI's summary)."""
    out = []
    for cfg in sorted(Path(repo).glob("*/config.pbtxt")):
        text = cfg.read_text()
        backend = text.split('backend: "', 1)[1].split('"', 1)[0]
        mbs = int(text.split("max_batch_size: ", 1)[1].split("\n", 1)[0])
        out.append({"model": cfg.parent.name, "backend": backend, "max_batch_size": mbs})
    return out
