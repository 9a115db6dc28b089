"""Full-size GR00T N1.5 (nvidia/GR00T-N1.5-3B's sizes, random weights, LeRobot's `groot` layout) on this machine:
export time and memory, then chunk latency of eager PyTorch vs ONNX Runtime vs OpenVINO fp32 / bf16, one process
per backend, shared observation and noise; each backend's chunk is saved and compared with eager's.

    python benchmarks/groot_full.py write /tmp/groot_full/ckpt        # weights streamed, never all in memory
    python benchmarks/groot_full.py export /tmp/groot_full/ckpt /tmp/groot_full/bundle
    python benchmarks/groot_full.py latency /tmp/groot_full/bundle --backend onnxruntime --checkpoint ...
    python benchmarks/groot_full.py latency /tmp/groot_full/bundle --backend openvino --precision bf16 ...
    python benchmarks/groot_full.py compare /tmp/groot_full/bundle --results /tmp/groot_full/results

Sizes: SigLIP (1152 wide, 27 layers, 224 px, patch 14 -> 256 tokens per camera, 1-layer connector), Qwen3-1.7B
kept up to select_layer 12 (2048 wide, vocab 151,936, its unused lm_head saved as LeRobot saves it), VL
self-attention 4 x 2048, DiT 16 x 1536 (32 heads x 48) with cross-attention to 2048, 32 embodiments, horizon 16,
4 Euler steps, one 224x224 camera. Memory helpers (MemoryMonitor) and the export / compare steps come from
benchmarks/pi0_full.py.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pi0_full import MemoryMonitor, cmd_compare, cmd_export  # noqa: E402

SEED, BLOCK = 7, 1 << 22   # float32 values per written block (16 MiB)


def _blocks(name: str, shape: tuple, rng: np.random.Generator):
    """Random values for one tensor in row blocks, at the tiny fixture's gains (groot_random_weights)."""
    n = int(np.prod(shape))
    rows = shape[0] if len(shape) > 1 else 1
    per_row, mean = n // rows, 0.0
    if len(shape) == 3:                                     # per-embodiment W (E, in, out)
        std = shape[1] ** -0.5 * (0.1 if name.endswith("action_decoder.layer2.W") else 1.0)
    elif len(shape) == 1:
        std, mean = 0.1, (0.0 if name.endswith("bias") else 1.0)
    elif "embed_tokens" in name or "position_embedding" in name:
        std = 1.0
    else:
        std = float(np.prod(shape[1:])) ** -0.5
        if "action_head" in name and name.endswith(("to_q.weight", "to_k.weight")):
            std *= 0.3
        elif name.endswith(("q_proj.weight", "k_proj.weight")) or "norm1.linear" in name or "proj_out_1" in name:
            std *= 0.5 if "proj.weight" in name else 0.3
    step = max(1, BLOCK // per_row)
    for r in range(0, rows, step):
        k = min(step, rows - r) * per_row
        yield (rng.standard_normal(k, dtype=np.float32) * np.float32(std) + np.float32(mean)).astype(np.float32)


def stream_safetensors(path: Path, shapes: dict[str, tuple], seed: int) -> int:
    header, offset = {}, 0
    for name, shape in shapes.items():
        size = int(np.prod(shape)) * 4
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * ((8 - len(head) % 8) % 8)
    rng = np.random.default_rng(seed)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for name, shape in shapes.items():
            for block in _blocks(name, shape, rng):
                f.write(block.tobytes())
    return 8 + len(head) + offset


def cmd_write(args) -> dict:
    from lerobot_edge.testing.checkpoints.groot import FULL_EAGLE, FULL_HEAD, write_groot_layout

    t0 = time.perf_counter()
    shapes = write_groot_layout(Path(args.checkpoint), cameras={"observation.images.front": (3, 224, 224)},
                                state_dim=12, action_dim=12, eagle=FULL_EAGLE, head=FULL_HEAD)
    size = stream_safetensors(Path(args.checkpoint) / "model.safetensors", dict(sorted(shapes.items())), SEED)
    params = int(sum(np.prod(s) for s in shapes.values()))
    return {"parameters": params, "safetensors_gib": round(size / 2**30, 2), "write_s": round(time.perf_counter() - t0, 1)}


def cmd_latency(args) -> dict:
    from lerobot_edge import load_policy
    from lerobot_edge.runtime.observations import random_observation

    mon, t0 = MemoryMonitor(), time.perf_counter()
    mon.set("load")
    if args.backend == "eager":
        from lerobot_edge.exporters.torch_session import load_torch_policy

        policy = load_torch_policy(args.bundle, args.checkpoint, threads=args.threads)
    else:
        opts = {"threads": args.threads, **({"precision": args.precision} if args.backend == "openvino" else {})}
        policy = load_policy(args.bundle, args.backend, backend_options=opts, allow_unvalidated=True)
    load_s = time.perf_counter() - t0
    rng = np.random.default_rng(SEED)
    obs = {**random_observation(policy.manifest["observations"], rng), "task": "pick up the red cube"}
    noise = rng.standard_normal(tuple(policy.manifest["noise_shape"][1:])).astype(np.float32)
    runs = []
    for i in range(args.iters + 1):  # the first call warms up
        mon.set("warmup" if i == 0 else "chunks")
        chunk = policy.predict_action_chunk(obs, noise=noise)
        runs.append({k: round(v, 3) for k, v in policy.timings.items()})
        print(f"{args.backend} chunk {i}: {runs[-1]}", flush=True)
    tag = args.backend + ("" if args.backend != "openvino" else f"_{args.precision}")
    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / f"chunk_{tag}.npy", chunk)
    totals = [r["total"] for r in runs[1:]]
    return {"backend": tag, "threads": args.threads, "load_s": round(load_s, 1), "warmup": runs[0], "chunks": runs[1:],
            "median_total_s": float(np.median(totals)), "peak_gib_per_phase": mon.stop()}


def _max_rss_gib(time_file: Path) -> float | None:
    """`/usr/bin/time -v`'s maximum resident set size (kB) of a step, in GiB."""
    for line in time_file.read_text().splitlines() if time_file.is_file() else []:
        if "Maximum resident set size" in line:
            return round(int(line.split(":")[-1]) / 2**20, 2)
    return None


def cmd_report(args) -> dict:
    """raw/*.json (+ /usr/bin/time -v logs) -> one JSON and a Markdown table."""
    raw = Path(args.raw)
    load = {p.stem: json.loads(p.read_text()) for p in raw.glob("*.json")}
    lat = {k[8:]: v for k, v in load.items() if k.startswith("latency_")}
    out = {"write": load.get("write"), "export": load.get("export"),
           "export_max_rss_gib": _max_rss_gib(raw / "export.time"), "latency": lat,
           "max_rss_gib": {k: _max_rss_gib(raw / f"latency_{k}.time") for k in lat},
           "vs_eager_normalized": load.get("compare")}
    rows = [f"| {k} | {v['load_s']} | {v['median_total_s']:.2f} | {v['chunks'][-1].get('vision', 0):.2f} | "
            f"{v['chunks'][-1].get('backbone', 0):.2f} | {v['chunks'][-1].get('denoise', 0):.2f} | "
            f"{out['max_rss_gib'][k]} | {(out['vs_eager_normalized'] or {}).get(v['backend'], float('nan')):.2g} |"
            for k, v in sorted(lat.items())]
    md = ["# GR00T N1.5 full size (random weights) on this CPU", "",
          f"{(out['write'] or {}).get('parameters')} parameters in LeRobot's `groot` layout "
          f"({(out['write'] or {}).get('safetensors_gib')} GiB safetensors); export "
          f"{(out['export'] or {}).get('export_s')} s (ONNX, unvalidated), max RSS {out['export_max_rss_gib']} GiB "
          "(includes page cache of the memory-mapped weights). One 224x224 camera, 4 Euler steps, horizon 16, "
          "2 threads, one process per backend, shared observation and noise, p50 of the chunks timed after a warm-up "
          f"({len(next(iter(lat.values()), {}).get('chunks', []))} per backend). The machine was shared with other "
          "jobs: latencies are indicative, ratios within this run are the point.", "",
          "| backend | load s | chunk p50 s | vision s | backbone s | 4 x denoise s | max RSS GiB | max err vs eager "
          "(normalized) |", "|---|---|---|---|---|---|---|---|", *rows, ""]
    Path(args.out).with_suffix(".md").write_text("\n".join(md))
    Path(args.out).with_suffix(".json").write_text(json.dumps(out, indent=2) + "\n")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write")
    w.add_argument("checkpoint")
    e = sub.add_parser("export")
    e.add_argument("checkpoint")
    e.add_argument("bundle")
    lat = sub.add_parser("latency")
    lat.add_argument("bundle")
    lat.add_argument("--backend", choices=("eager", "onnxruntime", "openvino"), required=True)
    lat.add_argument("--precision", default="f32", choices=("f32", "bf16"))
    lat.add_argument("--checkpoint")
    lat.add_argument("--iters", type=int, default=2)
    lat.add_argument("--threads", type=int, default=2)
    lat.add_argument("--results", default="/tmp/groot_full/results")
    c = sub.add_parser("compare")
    c.add_argument("bundle")
    c.add_argument("--results", default="/tmp/groot_full/results")
    r = sub.add_parser("report")
    r.add_argument("raw")
    r.add_argument("out", help="path without suffix: .md and .json are written")
    p.add_argument("--json", type=Path, help="also write the result here")
    args = p.parse_args()
    result = {"write": cmd_write, "export": cmd_export, "latency": cmd_latency, "compare": cmd_compare,
              "report": cmd_report}[args.cmd](args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
