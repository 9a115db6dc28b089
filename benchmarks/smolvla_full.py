#!/usr/bin/env python3
"""Full-size SmolVLA on this machine: export time and peak memory, then chunk latency of eager PyTorch (our
modules, fp32 and bf16 autocast) vs onnxruntime (fp32) vs OpenVINO (fp32, bf16 inference precision, and an int8
bundle: NNCF, calibrated on recorded observations, each graph's mode chosen by its accuracy check).

The VLM is SmolVLM2-500M-Video-Instruct's architecture (config.json written from its known sizes, synthetic
tokenizer with the real 49,280 entries: the Hub is unreachable here), truncated to SmolVLA's 16 layers; random
weights in LeRobot's layout (timing does not depend on trained weights). Policy: 2 cameras 480x640 (resized to
512 -> 64 tokens each), state 6, action 6, chunk 50, 10 steps, prompt padded to 48 tokens.

One process per step and per backend (never two fp32 copies of the model in one process): `all` runs
  prepare  -> WORK/vlm, WORK/checkpoint, WORK/inputs.npz (observation + noise)
  export   -> WORK/bundle (ONNX, validate=False: the per-backend runs below compare their chunks with eager's)
  export-int8 -> WORK/bundle-openvino-int8 (OpenVINO int8, calibrated on WORK/calibration.npz: jittered copies of
             the observation; the manifest's `quantization` says which mode each graph kept)
  latency  -> WORK/latency-<backend>.json, one process each; torch first (its chunk is the reference on disk)
and prints a markdown table. `--iters` chunks after one warm-up (default 3: keep it small on a shared machine).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CAMERAS = {"observation.images.top": (3, 480, 640), "observation.images.wrist": (3, 480, 640)}
BACKENDS = ("torch", "torch-bf16", "onnxruntime", "openvino", "openvino-bf16", "openvino-int8")
HOST = ("preprocess", "sampler", "postprocess")   # the host stages (numpy) around the engine calls
CALIBRATION_FRAMES = 8


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20  # Linux: KiB


def prepare(work: Path, tiny: bool = False) -> dict:
    """tiny: the test suite's reduced VLM (a smoke test of this script)."""
    from lerobot_edge.testing.checkpoints.smolvla import FULL_VLM, TINY_VLM, write_smolvla_checkpoint, write_vlm_dir

    t0 = time.perf_counter()
    vlm = write_vlm_dir(work / "vlm", TINY_VLM if tiny else FULL_VLM)
    write_smolvla_checkpoint(work / "checkpoint", vlm, cameras=CAMERAS, state_dim=6, action_dim=6, chunk_size=50,
                             tokenizer_max_length=48, num_vlm_layers=4 if tiny else 16, image_size=64 if tiny else 512)
    rng = np.random.default_rng(0)
    obs = {k: rng.integers(0, 256, (s[1], s[2], 3), dtype=np.uint8) for k, s in CAMERAS.items()}
    np.savez(work / "inputs.npz", **{f"obs.{k}": v for k, v in obs.items()},
             state=rng.standard_normal(6).astype(np.float32), noise=rng.standard_normal((1, 50, 32)).astype(np.float32))
    return {"seconds": time.perf_counter() - t0, "peak_rss_gb": peak_rss_gb()}


def export(work: Path) -> dict:
    import torch

    from lerobot_edge import export as export_bundle

    t0 = time.perf_counter()
    export_bundle(work / "checkpoint", work / "bundle", validate=False, overwrite=True)
    seconds = time.perf_counter() - t0
    onnx = {}  # graph (+ external data), and the host-side embedding table
    for p in (work / "bundle").iterdir():
        if p.name.endswith((".onnx", ".onnx.data", ".npy")):
            name = p.name.split(".")[0]
            onnx[name] = onnx.get(name, 0.0) + p.stat().st_size / 2 ** 30
    return {"seconds": seconds, "peak_rss_gb": peak_rss_gb(), "onnx_gb": onnx, "torch_threads": torch.get_num_threads()}


def export_int8(work: Path) -> dict:
    """The OpenVINO int8 bundle, calibrated on CALIBRATION_FRAMES observations (the prepared one with its frames
    shifted and jittered: random weights have no dataset) run through the runtime's own preprocessing."""
    from lerobot_edge import export as export_bundle

    obs, _ = _inputs(work)
    rng = np.random.default_rng(1)
    frames = {k: np.stack([np.clip(np.roll(v, 8 * i, axis=1).astype(np.int16) + rng.integers(-12, 13, v.shape),
                                   0, 255).astype(np.uint8) for i in range(CALIBRATION_FRAMES)])
              for k, v in obs.items() if k.startswith("observation.images")}
    state = obs["observation.state"] + 0.1 * rng.standard_normal((CALIBRATION_FRAMES, 6)).astype(np.float32)
    np.savez(work / "calibration.npz", **frames, **{"observation.state": state},
             task=np.array([obs["task"]] * CALIBRATION_FRAMES))
    t0 = time.perf_counter()
    out = export_bundle(work / "checkpoint", work / "bundle-openvino-int8", "openvino", precision="int8",
                        validate=False, calibration=str(work / "calibration.npz"), overwrite=True)
    manifest = json.loads((out / "manifest.json").read_text())
    modes = {g: {k: r.get(k) for k in ("mode", "tried")} for g, r in (manifest.get("quantization") or {}).items()}
    return {"seconds": time.perf_counter() - t0, "peak_rss_gb": peak_rss_gb(), "modes": modes}


def _inputs(work: Path) -> tuple[dict, np.ndarray]:
    z = np.load(work / "inputs.npz")
    obs = {k[4:]: z[k] for k in z.files if k.startswith("obs.")}
    obs.update({"observation.state": z["state"], "task": "pick up the red cube and put it into the blue bowl"})
    return obs, z["noise"]


def _torch_policy(work: Path, bf16: bool):
    import torch

    from lerobot_edge.bundle import Bundle
    from lerobot_edge.checkpoint import load_checkpoint
    from lerobot_edge.policies import build_plan
    from lerobot_edge.runtime.policies.flow import FlowMatchingEdgePolicy

    class Session:
        """Our eager module behind the backend Session interface; bf16: CPU autocast, fp32 results."""

        def __init__(self, graph):
            self.plan = self.graph = graph

        def run(self, inputs, *, keep=()):
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = self.plan.module(*[torch.as_tensor(np.asarray(inputs[i.name]) if not torch.is_tensor(
                    inputs[i.name]) else inputs[i.name]) for i in self.plan.inputs])
            out = out if isinstance(out, (tuple, list)) else (out,)
            return {o.name: (t if o.name in keep else t.float().numpy()) for o, t in zip(self.plan.outputs, out)}

    plan = build_plan(load_checkpoint(work / "checkpoint"))
    return FlowMatchingEdgePolicy(Bundle.open(work / "bundle"), "torch", {g.name: Session(g) for g in plan.graphs}, {})


def latency(work: Path, backend: str, iters: int) -> dict:
    from lerobot_edge import load_policy

    t0 = time.perf_counter()
    if backend.startswith("torch"):
        policy = _torch_policy(work, backend.endswith("bf16"))
    else:
        name, _, prec = backend.partition("-")
        opts = {"precision": "bf16"} if prec == "bf16" else {}
        bundle = work / ("bundle-openvino-int8" if prec == "int8" else "bundle")
        policy = load_policy(bundle, name, backend_options=opts, allow_unvalidated=True)
    load_s = time.perf_counter() - t0
    obs, noise = _inputs(work)
    chunks, timings = [], []
    for i in range(iters + 1):  # the first call is the warm-up
        chunks.append(policy.predict_action_chunk(obs, noise=noise))
        if i:
            timings.append(dict(policy.timings))
    out = {"backend": backend, "load_s": load_s, "iters": iters, "peak_rss_gb": peak_rss_gb(),
           "timings_ms": {k: [1e3 * t[k] for t in timings] for k in timings[0]}}
    ref = work / "reference-chunk.npy"
    if backend == "torch":
        np.save(ref, chunks[-1])
    if ref.is_file():
        std = policy.bundle.stats()["action"]["std"]
        out["max_err_vs_torch_fp32"] = float(np.abs((chunks[-1] - np.load(ref)) / std).max())  # normalized units
    return out


def _run_step(work: Path, step: str, *extra: str) -> dict:
    cmd = [sys.executable, __file__, "--work", str(work), step, *extra]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    return json.loads((work / f"{step}{'-' + extra[1] if step == 'latency' else ''}.json").read_text())


def table(results: dict) -> str:
    exp = results["export"]
    lines = [f"export: {exp['seconds']:.0f} s, peak RSS {exp['peak_rss_gb']:.1f} GiB, files "
             + ", ".join(f"{k} {v:.2f} GiB" for k, v in exp["onnx_gb"].items())]
    if "export-int8" in results:
        q = results["export-int8"]
        lines.append(f"export OpenVINO int8: {q['seconds']:.0f} s, peak RSS {q['peak_rss_gb']:.1f} GiB, modes "
                     + ", ".join(f"{g} {r['mode']}" for g, r in q["modes"].items()))
    lines += ["",
             "| backend | load s | peak RSS GiB | vision p50 ms | prefix p50 ms | denoise x10 p50 ms | chunk p50 ms | "
             "chunk max ms | host ms (% of engine) | max err vs torch fp32 (normalized) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for b in BACKENDS:
        r = results.get(b)
        if r is None:
            continue
        t = {k: float(np.median(v)) for k, v in r["timings_ms"].items()}
        host = sum(t.get(k, 0.0) for k in HOST)
        engine = sum(v for k, v in t.items() if k not in (*HOST, "total"))
        lines.append(f"| {b} | {r['load_s']:.1f} | {r['peak_rss_gb']:.1f} | {t.get('vision', 0):.0f} | "
                     f"{t.get('prefix', 0):.0f} | {t.get('denoise', 0):.0f} | {t['total']:.0f} | "
                     f"{max(r['timings_ms']['total']):.0f} | {host:.1f} ({100 * host / max(engine, 1e-9):.2f}) | "
                     f"{r.get('max_err_vs_torch_fp32', float('nan')):.2g} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=REPO / ".cache" / "smolvla-full")
    ap.add_argument("step", choices=("prepare", "export", "export-int8", "latency", "all"))
    ap.add_argument("--backend", choices=BACKENDS)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--backends", default=",".join(BACKENDS))
    ap.add_argument("--tiny", action="store_true", help="prepare the reduced test VLM instead (smoke test)")
    args = ap.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    if args.step == "all":
        results = {}
        if not (work / "checkpoint" / "model.safetensors").is_file():
            results["prepare"] = _run_step(work, "prepare", *(["--tiny"] if args.tiny else []))
        results["export"] = _run_step(work, "export")
        backends = args.backends.split(",")
        if "openvino-int8" in backends:
            results["export-int8"] = _run_step(work, "export-int8")
        for b in backends:
            results[b] = _run_step(work, "latency", "--backend", b, "--iters", str(args.iters))
        (work / "results.json").write_text(json.dumps(results, indent=2))
        print(table(results))
        return
    if args.step == "latency":
        res, name = latency(work, args.backend, args.iters), f"latency-{args.backend}"
    else:
        steps = {"prepare": lambda: prepare(work, args.tiny), "export": lambda: export(work),
                 "export-int8": lambda: export_int8(work)}
        res, name = steps[args.step](), args.step
    (work / f"{name}.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res))


if __name__ == "__main__":
    main()
