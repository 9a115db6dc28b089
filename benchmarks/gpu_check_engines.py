"""gpu_check's engine sections (each run in its own process by gpu_check.py): ONNX Runtime (CPU, CUDA provider
plain / IOBinding / IOBinding + CUDA graphs, TensorRT provider fp32 / fp16) and TensorRT itself (fp32 / fp16),
through lerobot-edge's own backends (backends/onnxruntime.py, backends/tensorrt.py) on ACT aloha and Diffusion
PushT DDIM-10, whose encoder output stays on the device across the ten denoise steps (`keep`).

Graphs are traced at batch 1 with our exporter (exporters/onnx.py, torch's dynamo exporter; it needs onnxscript)
or, where onnxscript is missing, torch's TorchScript exporter. The chunk loop is the runtime's: numpy DDIM on
the host, graph outputs back to numpy each step (a GPU's PCIe/NVLink copies included, as a robot pays them).
"""

from __future__ import annotations

import importlib.util
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from gpu_check_torch import time_chunks
from gpu_models import BUILDERS

ENGINE_MODELS = ("act_aloha", "diffusion_pusht_ddim10")


def _export(module, example: dict, names_out: list[str], path: Path, torchscript: bool = False) -> str:
    """ONNX at batch 1 (every shape fixed). -> the exporter used. `torchscript`: torch's TorchScript exporter
    even where onnxscript is installed (the smoke run: seconds instead of a minute, and the path a bare GPU
    machine without onnxscript takes)."""
    from lerobot_edge.bundle import IOSpec

    inputs = [IOSpec(k, tuple(v.shape)) for k, v in example.items()]
    outputs = [IOSpec(n, ()) for n in names_out]
    if not torchscript and importlib.util.find_spec("onnxscript") is not None:
        from lerobot_edge.exporters.onnx import export_onnx

        export_onnx(module, {k: v.numpy() for k, v in example.items()}, inputs, outputs, path)
        return "dynamo (lerobot_edge.exporters.onnx)"
    import warnings

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")   # TracerWarnings: every shape is fixed here on purpose
        traced = torch.jit.trace(module, tuple(example.values()), check_trace=False)   # shapes become constants
        torch.onnx.export(traced, tuple(example.values()), str(path), dynamo=False, opset_version=18,
                          input_names=list(example), output_names=names_out)
    return "torchscript" + ("" if torchscript else " (onnxscript not installed)")


def _bundle(work: Path, graphs: dict[str, tuple], precision: str, trt: bool):
    """A Bundle object over the exported files (as tests/test_backend_contract.py builds one), with TensorRT
    build plans when `trt`."""
    import json

    import onnx

    from lerobot_edge.backends.tensorrt_plan import build_plan
    from lerobot_edge.bundle import Bundle, GraphSpec, IOSpec, sha256_file

    specs = []
    for name, (path, example) in graphs.items():
        model = onnx.load(str(path), load_external_data=False)
        outs = [IOSpec(o.name, tuple(d.dim_value for d in o.type.tensor_type.shape.dim)) for o in model.graph.output]
        spec = GraphSpec(name, path.name, tuple(IOSpec(k, tuple(v.shape)) for k, v in example.items()), tuple(outs))
        if trt:
            rel = f"{name}.{precision}.plan.json"
            (work / rel).write_text(json.dumps(build_plan(spec, sha256_file(path), precision, max_batch=1)))
            spec = GraphSpec(spec.name, spec.file, spec.inputs, spec.outputs, artifacts={"trt": rel})
        specs.append(spec)
    return Bundle(work, {"graphs": [s.to_json() for s in specs], "files": {}, "precision": precision}), specs


def _model(name: str, tiny: bool, work: Path) -> dict:
    """Export one policy's graphs; -> {"graphs": {graph: (path, example)}, "chunk": f(sessions), "ref": chunk}."""
    pol = BUILDERS[name](torch.device("cpu"), tiny)
    x = pol.inputs
    with torch.no_grad():
        ref = pol.chunk(pol.graphs, x).numpy()
    if name == "act_aloha":
        ex = {"observation.state": x["state"], "observation.images.top": x["image"]}
        exporter = _export(pol.graphs["act"], ex, ["action"], work / "act.onnx", tiny)
        return {"graphs": {"act": (work / "act.onnx", ex)}, "exporter": exporter, "ref": ref,
                "chunk": lambda s, feed=None: s["act"].run({k: v.numpy() for k, v in ex.items()})["action"]}
    enc = {"observation.state": x["state"], "observation.image": x["image"]}
    with torch.no_grad():
        cond = pol.graphs["encoder"](*enc.values())
    den = {"sample": x["noise"], "timestep": torch.zeros(1), "global_cond": cond}
    # torch's TorchScript tracer cannot export the encoder (its center crop rounds traced shapes): dynamo only
    exporter = _export(pol.graphs["encoder"], enc, ["global_cond"], work / "encoder.onnx")
    _export(pol.graphs["denoise"], den, ["model_output"], work / "denoise.onnx")
    steps, clip = pol.extra["ddim"], np.float32(pol.extra["clip"])   # the constants the torch chunk used
    feed = {k: v.numpy() for k, v in enc.items()}
    noise = x["noise"].numpy()

    def chunk(s):
        c = s["encoder"].run(feed, keep=("global_cond",))["global_cond"]     # stays on the device
        sample = noise
        for t, sa, sb, sap, sbp in steps:
            eps = s["denoise"].run({"sample": sample, "timestep": np.full((1,), t, np.float32),
                                    "global_cond": c})["model_output"]
            x0 = np.clip((sample - np.float32(sb) * eps) / np.float32(sa), -clip, clip)
            sample = (np.float32(sap) * x0 + np.float32(sbp) * eps).astype(np.float32)
        return sample
    return {"graphs": {"encoder": (work / "encoder.onnx", enc), "denoise": (work / "denoise.onnx", den)},
            "exporter": exporter, "chunk": chunk, "ref": ref}


def _variants(kind: str, cuda: bool, providers: list[str]) -> list[tuple[str, str, dict, str | None]]:
    """(variant, precision, backend_options, skip reason) of one section."""
    if kind == "tensorrt":
        return [(f"tensorrt/{p}", p, {"device": "cuda"}, None) for p in ("fp32", "fp16")]
    no_cuda = None if "CUDAExecutionProvider" in providers and cuda else \
        f"onnxruntime has no CUDA provider here (providers {providers}): install onnxruntime-gpu" if cuda else \
        "no CUDA device"
    no_trt = no_cuda or (None if "TensorrtExecutionProvider" in providers else
                         f"onnxruntime has no TensorRT provider here (providers {providers})")
    trt_ep = {"providers": ["TensorrtExecutionProvider", "CUDAExecutionProvider"], "io_binding": True}
    return [("ort-cpu", "fp32", {"device": "cpu"}, None),
            ("ort-cpu/io_binding", "fp32", {"device": "cpu", "io_binding": True}, None if not cuda else "GPU run"),
            ("ort-cuda/plain", "fp32", {"device": "cuda", "io_binding": False}, no_cuda),
            ("ort-cuda/io_binding", "fp32", {"device": "cuda", "io_binding": True}, no_cuda),
            ("ort-cuda/io_binding+cuda_graph", "fp32", {"device": "cuda", "cuda_graph": True}, no_cuda),
            ("ort-trt-ep/fp32", "fp32", trt_ep, no_trt), ("ort-trt-ep/fp16", "fp16", trt_ep, no_trt)]


def run(kind: str, device: torch.device, tiny: bool, budget_s: float, emit: Callable[[dict], None],
        iterations: int = 30, warmup: int = 3, variant_seconds: float = 8.0, smoke_all: bool = False) -> None:
    """kind: "onnxruntime" | "tensorrt". Emits a config line, then one line per (model, variant). A CPU smoke
    run (tiny) does ACT only unless `smoke_all` (Diffusion's dynamo export takes a minute on a small CPU)."""
    from lerobot_edge.backends import get_backend

    deadline = time.perf_counter() + budget_s
    backend = get_backend(kind)
    lib = backend.import_library()
    providers = list(lib.get_available_providers()) if kind == "onnxruntime" else []
    emit({"kind": "config", "library": kind, "version": getattr(lib, "__version__", "?"), "providers": providers,
          "tiny": tiny, "device": str(device)})
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        for name in ENGINE_MODELS:
            if tiny and not smoke_all and name != ENGINE_MODELS[0]:
                emit({"kind": "variant", "model": name, "variant": "*", "status": "skipped",
                      "reason": "CPU smoke run: ACT only (--smoke-all runs this one too)"})
                continue
            if deadline - time.perf_counter() < 20:
                emit({"kind": "variant", "model": name, "variant": "*", "status": "skipped",
                      "reason": f"section time budget: {deadline - time.perf_counter():.0f} s left"})
                continue
            work = Path(tmp) / name
            work.mkdir()
            t0 = time.perf_counter()
            try:
                m = _model(name, tiny, work)
            except Exception as e:
                emit({"kind": "variant", "model": name, "variant": "export", "status": "error",
                      "reason": f"{type(e).__name__}: {str(e)[:600]}"})
                continue
            emit({"kind": "export", "model": name, "exporter": m["exporter"], "seconds": round(time.perf_counter() - t0, 1)})
            for variant, precision, options, skip in _variants(kind, device.type == "cuda", providers):
                row = {"kind": "variant", "model": name, "variant": variant, "precision": precision, "options": options}
                left = deadline - time.perf_counter()
                if skip or left < 10:
                    emit({**row, "status": "skipped", "reason": skip or f"section time budget: {left:.0f} s left"})
                    continue
                emit(_timed(backend, m, work, precision, options, kind, row, device, iterations, warmup,
                            min(variant_seconds, left - 5)))


def _timed(backend, m, work, precision, options, kind, row, device, iterations, warmup, seconds) -> dict:
    try:
        t0 = time.perf_counter()
        bundle, specs = _bundle(work, m["graphs"], precision, trt=kind == "tensorrt")
        opts = {**options, **({"cache_dir": str(work / "engines")} if kind == "tensorrt" else {})}
        sessions = {s.name: backend().load(s, bundle, backend.check_options(opts)) for s in specs}
        load_s = time.perf_counter() - t0
        stats, out, _ = time_chunks(lambda: torch.from_numpy(np.asarray(m["chunk"](sessions))), torch.device("cpu"),
                                    warmup, iterations, seconds)
        err = np.abs(out.numpy() - m["ref"]).max()
        bound = [n for n, s in sessions.items() if getattr(s, "bound", None) is not None]
        return {**row, "status": "ok", **stats, "load_s": round(load_s, 2), "max_abs_vs_torch_fp32": float(err),
                "io_bound_graphs": bound}
    except Exception as e:
        return {**row, "status": "error", "reason": f"{type(e).__name__}: {str(e)[:600]}"}
