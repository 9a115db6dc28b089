"""`lerobot-edge bench`: identical observations and noise for every backend, warm-up, then rounds in which
each backend runs once in turn (interleaved, so drift and thermal effects hit all alike); percentiles per
stage; cold start; FLOPs against the measured GEMM peak; the control rates the latencies allow."""

from __future__ import annotations

import itertools
import resource
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..bundle import Bundle
from ..errors import ValidationError
from ..progress import Progress, ProgressLike, as_progress
from ..registry import runtime_class
from .accuracy import accuracy_summary
from .machine import bf16_record, gemm_peak_gflops, machine_record
from .options import check_engine_options, eager_skip_reason, engine_options

SCHEMA_VERSION = 1
# eager PyTorch variants: "torch" = our export modules, "lerobot" = LeRobot's own policy (when installed)
EAGER = ("torch", "lerobot")


@dataclass
class BenchConfig:
    backends: tuple[str, ...] = ("torch", "onnxruntime", "openvino")
    precisions: tuple[str, ...] = ("fp32",)
    iterations: int = 30
    warmup: int = 3
    threads: int | None = None
    policy_type: str | None = None
    seed: int = 0
    device: str | None = None                 # engine backends' device ('cuda:0', 'GPU', …); eager stays on CPU
    backend_options: dict | None = None       # one dict for every engine backend, or one per backend name
    # checkpoint sources: "host" (host preprocessing) and/or "in_graph" (exported with preprocess_in_graph)
    preprocess: tuple[str, ...] = ("host",)
    probe_sizes: tuple[int, ...] = (1024, 2048)   # the GEMM probes' square sizes (a smoke run: smaller)


@dataclass
class Variant:
    name: str          # "onnxruntime/fp32"
    backend: str
    precision: str
    bundle: Path
    policy: object = None
    cold_start_s: float = 0.0
    skipped: str | None = None
    chunk_calls: dict | None = None   # batch rows per graph in one predict_action_chunk (calls x batch)
    preprocess: str = "host"          # "in_graph": a bundle exported with preprocess_in_graph
    chunk_bytes: dict | None = None   # bytes of host arrays fed per graph in one predict_action_chunk
    threads: dict | None = None       # the thread settings it ran with (per graph for engine backends)


def percentiles(xs: list[float]) -> dict[str, float]:
    a = np.asarray(xs) * 1e3
    return {"p50_ms": float(np.percentile(a, 50)), "p90_ms": float(np.percentile(a, 90)),
            "p99_ms": float(np.percentile(a, 99)), "max_ms": float(a.max()), "mean_ms": float(a.mean()), "n": len(xs)}


def _is_bundle(p: Path) -> bool:
    return (p / "manifest.json").is_file()


def _prepare(source: Path, cfg: BenchConfig, workdir: Path, progress: Progress) -> tuple[list[Variant], str | None]:
    """Bundles for every (backend, precision) asked for; returns the variants and the checkpoint (for torch)."""
    from ..registry import TARGETS

    if _is_bundle(source):
        m = Bundle.open(source).manifest
        ckpt = m["source"].get("path") if Path(m["source"].get("path", "")).is_dir() else None
        out = []
        mode = "in_graph" if (m.get("preprocess") or {}).get("in_graph") else "host"
        for b in cfg.backends:
            v = Variant(_name(b, m["precision"], mode), b, m["precision"], source, preprocess=mode)
            if b in EAGER and not ckpt:
                v.skipped = "the bundle's source checkpoint is not on this machine"
            out.append(v)
        return out, ckpt
    from ..api import export

    bad = sorted(set(cfg.preprocess) - {"host", "in_graph"})
    if bad:
        raise ValueError(f"preprocess {bad}: expected 'host' and/or 'in_graph'")
    variants = []
    for mode in cfg.preprocess:
        for b in cfg.backends:
            for p in cfg.precisions:
                backend = "onnxruntime" if b in EAGER else b   # eager variants borrow the ONNX bundle's manifest
                target = next((t for t in TARGETS.values() if t.backend == backend and p in t.precisions), None)
                v = Variant(_name(b, p, mode), b, p, source, preprocess=mode)
                if b in EAGER and p != "fp32":
                    v.skipped = f"eager {b} runs fp32 only"
                elif b == "lerobot" and mode == "in_graph":
                    v.skipped = "LeRobot's policy preprocesses on the host"
                elif target is None:
                    v.skipped = f"no export target for {b} at {p}"
                else:
                    v.bundle = workdir / (f"{target.name}-{p}" + ("-in_graph" if mode == "in_graph" else ""))
                    if not (v.bundle / "manifest.json").is_file():
                        progress.step(f"exporting {source} to {target.name} ({p}{', preprocess in graph' if mode != 'host' else ''})")
                        try:   # as a user exports (the gate's precision fallback included)
                            export(source, v.bundle, target.name, policy_type=cfg.policy_type, precision=p,
                                   preprocess_in_graph=mode == "in_graph", overwrite=True)
                        except ValidationError:   # written all the same: measured, its accuracy row says "below gate"
                            pass
                        except Exception as e:  # a precision this policy cannot export yet: a row with the reason
                            v.skipped = f"export failed: {type(e).__name__}: {str(e)[:300]}"
                variants.append(v)
    return variants, str(source)


def _name(backend: str, precision: str, preprocess: str) -> str:
    """"onnxruntime/fp32", or "onnxruntime/fp32/in_graph" for a preprocess_in_graph bundle."""
    return f"{backend}/{precision}" + ("" if preprocess == "host" else f"/{preprocess}")


def _load(v: Variant, ckpt: str | None, cfg: BenchConfig, obs: dict, noise) -> None:
    from ..runtime import load_policy

    t0, opts = time.perf_counter(), None
    try:
        if v.backend == "torch":
            from ..exporters.torch_session import load_torch_policy
            v.policy = load_torch_policy(str(v.bundle), ckpt, cfg.threads)
        elif v.backend == "lerobot":
            from .lerobot_session import LeRobotPolicyRunner
            v.policy = LeRobotPolicyRunner(ckpt, Bundle.open(v.bundle).manifest, cfg.threads)
        else:
            opts = engine_options(v.backend, cfg.backend_options, cfg.device, cfg.threads)
            v.policy = load_policy(v.bundle, v.backend, backend_options=opts, allow_unvalidated=True)
        v.policy.predict_action_chunk(obs, noise=noise)
        v.threads = thread_record(v, opts if v.backend not in EAGER else None)
    except Exception as e:  # a backend that is missing here is reported, not fatal
        v.skipped = f"{type(e).__name__}: {e}"
        return
    v.cold_start_s = time.perf_counter() - t0


def thread_record(v: Variant, options: dict | None) -> dict:
    """What a variant's threads were: the backend_options asked for and, per graph, what the session set
    (ORT SessionOptions, OpenVINO's compiled INFERENCE_NUM_THREADS / ENABLE_CPU_PINNING / ...); eager torch:
    torch.get_num_threads()."""
    if options is None:
        import torch
        return {"torch_num_threads": torch.get_num_threads(), "torch_interop_threads": torch.get_num_interop_threads()}
    sessions = getattr(v.policy, "sessions", {}) or {}
    return {"backend_options": {k: o for k, o in options.items() if k != "provider_options"},
            "graphs": {g: getattr(s, "settings", None) for g, s in sessions.items()}}


TASK = "pick up the red cube and place it in the bin"   # VLAs: a typical instruction (padded to max length)


def _observations(manifest: dict, n: int, seed: int) -> list[dict]:
    from ..runtime.observations import random_observation

    rng = np.random.default_rng(seed)
    task = {"task": TASK} if manifest["runtime"].get("tokenizer") else {}
    return [{**random_observation(manifest["observations"], rng), **task} for _ in range(n)]


def _noise(manifest: dict, seed: int):
    shape = manifest.get("noise_shape")
    if not shape:
        return None
    shape = [1 if isinstance(s, str) else s for s in shape][1:]  # unbatched observations
    rng = np.random.default_rng(seed + 1)
    if runtime_class(manifest["runtime"]["kind"]).noise_kind == "uniform":  # e.g. VQ-BeT's code draws
        return rng.random(shape)
    return rng.standard_normal(shape).astype(np.float32)


def _chunk_rounds(live: list[Variant], obs: list[dict], noise, cfg: BenchConfig, progress: Progress
                  ) -> dict[str, dict]:
    stages: dict[str, dict[str, list[float]]] = {v.name: {} for v in live}
    rounds = itertools.chain(
        progress.track(range(cfg.warmup), "warming up"),
        progress.track(range(cfg.warmup, cfg.warmup + cfg.iterations),
                       f"timing {cfg.iterations} interleaved rounds over {len(live)} backend(s)"))
    for it in rounds:
        order = live[it % len(live):] + live[: it % len(live)]  # rotate who goes first
        for v in order:
            v.policy.predict_action_chunk(obs[it % len(obs)], noise=noise)
            v.chunk_calls = dict(getattr(v.policy, "graph_rows", None) or v.policy.graph_calls)
            v.chunk_bytes = getattr(v.policy, "graph_bytes", None)   # LeRobot's own policy: not counted
            if it >= cfg.warmup:
                for stage, sec in v.policy.timings.items():
                    stages[v.name].setdefault(stage, []).append(sec)
    return stages


def _select_rounds(live: list[Variant], obs: list[dict], noise, rounds: int, progress: Progress
                   ) -> tuple[dict, dict]:
    """select_action over one full queue (n_action_steps calls, one chunk computed): the amortized cost per
    call, and the cost of a call served from the queue (what an async loop pays per tick)."""
    amortized: dict[str, list[float]] = {v.name: [] for v in live}
    queued: dict[str, list[float]] = {v.name: [] for v in live}
    for r in progress.track(range(rounds), "timing select_action over full queues"):
        for v in live:
            n = max(1, int(getattr(v.policy, "n_action_steps", 1)))
            v.policy.reset()
            t0 = time.perf_counter()
            for i in range(n):
                v.policy.select_action(obs[(r + i) % len(obs)], noise=noise)
                if i > 0:
                    queued[v.name].append(v.policy.timings["total"])
            amortized[v.name].append((time.perf_counter() - t0) / n)
    return amortized, queued


HOST_STAGES = ("preprocess", "sampler", "postprocess")   # numpy on the host, around the engine calls


def host_share(stages: dict[str, list[float]], graphs: list[str]) -> dict:
    """The host's work per chunk against the engines': p50 over rounds of (preprocess + sampler + postprocess)
    / (the graph calls' time), and the p50 host milliseconds. Empty for a variant timed end to end only
    (LeRobot's own policy). The issue's budget: <= 2 % of engine time per chunk for every policy."""
    engine_names = [k for k in stages if k not in (*HOST_STAGES, "total")] or graphs
    n = len(stages.get("total", ()))
    if not n or not all(k in stages for k in HOST_STAGES):
        return {}
    host = np.sum([stages[k] for k in HOST_STAGES], axis=0)
    engine = np.sum([stages[k] for k in engine_names if k in stages], axis=0)
    share = host / np.maximum(engine, 1e-9)
    return {"host_ms_p50": round(float(np.median(host)) * 1e3, 4), "host_share": round(float(np.median(share)), 5),
            "host_stage_p50_ms": {k: round(float(np.median(stages[k])) * 1e3, 4) for k in HOST_STAGES}}


def control_rates(chunk_p99_ms: float, step_p99_ms: float, n_action_steps: int) -> dict[str, float]:
    """Highest control rate (Hz) a loop sustains: sync must fit a whole inference in one tick; async must
    compute the next chunk while the queued n_action_steps play out, and still pop one action per tick."""
    sync = 1000.0 / chunk_p99_ms
    asyn = min(1000.0 * n_action_steps / chunk_p99_ms, 1000.0 / max(step_p99_ms, 1e-6))
    return {"sync_hz": round(sync, 1), "async_hz": round(asyn, 1)}


def run_bench(source: str | Path, cfg: BenchConfig | None = None, progress: ProgressLike = None,
              workdir: str | Path | None = None) -> dict:
    """Benchmark a checkpoint (exported here for each backend/precision) or a bundle. Returns the report
    (see bench/schema.json)."""
    cfg = cfg or BenchConfig()
    progress = as_progress(progress)
    check_engine_options(cfg.backends, cfg.backend_options, cfg.device, cfg.threads)   # before any export
    machine = machine_record(cfg.probe_sizes)  # the GEMM probes first, on a quiet machine
    with tempfile.TemporaryDirectory(prefix="lerobot-edge-bench-") as tmp:
        variants, ckpt = _prepare(Path(source), cfg, Path(workdir or tmp), progress)
        for v in variants:
            if v.backend in EAGER and not v.skipped:
                v.skipped = eager_skip_reason(cfg.device)
        first = next(v for v in variants if not v.skipped)
        manifest = Bundle.open(first.bundle).manifest
        obs, noise = _observations(manifest, 8, cfg.seed), _noise(manifest, cfg.seed)
        for v in variants:
            if not v.skipped:
                progress.step(f"loading {v.name} (cold start)")
                _load(v, ckpt, cfg, obs[0], noise)
        live = [v for v in variants if not v.skipped]
        if not live:
            raise RuntimeError("no backend could run: " + "; ".join(f"{v.name}: {v.skipped}" for v in variants))
        stages = _chunk_rounds(live, obs, noise, cfg, progress)
        amortized, queued = _select_rounds(live, obs, noise, max(2, cfg.iterations // 10), progress)
        # probe again: a core taken by another process during the first probe would understate the ceiling
        machine["gemm_peak_gflops"] = round(max(machine["gemm_peak_gflops"], gemm_peak_gflops(cfg.probe_sizes)), 1)
        again = bf16_record(cfg.probe_sizes)
        if again["bf16_gemm_peak_gflops"] and again["bf16_gemm_peak_gflops"] > (machine["bf16_gemm_peak_gflops"] or 0):
            machine.update(again)
        machine["threads"] = {v.name: v.threads for v in variants if v.threads is not None}
        return _report(source, cfg, manifest, variants, stages, amortized, queued, machine)


def _report(source, cfg, manifest, variants, stages, amortized, queued, machine) -> dict:
    # FLOPs of one predict_action_chunk: each graph's batch-1 count times the rows it ran (N denoise steps,
    # a planner's samples)
    calls = next((v.chunk_calls for v in variants if not v.skipped and v.chunk_calls), {})
    flops = sum((g.get("flops") or 0) * calls.get(g["name"], 1) for g in manifest["graphs"]) or None
    n_steps = int(manifest["runtime"].get("n_action_steps", 1))
    eager_p50: dict[str, float] = {}   # "torch" / "lerobot" -> chunk p50 (ms)
    rows = []
    for v in variants:
        row = {"name": v.name, "backend": v.backend, "precision": v.precision, "skipped": v.skipped,
               "preprocess": v.preprocess}
        if v.backend not in EAGER and (Path(v.bundle) / "manifest.json").is_file():
            row["accuracy"] = accuracy_summary(Bundle.open(v.bundle, verify=False).manifest)
        if not v.skipped:
            # what crosses from the host to the engine per chunk (uint8 frames: a quarter of float32 images)
            row.update(bytes_to_engine_per_chunk=sum(v.chunk_bytes.values()) if v.chunk_bytes else None,
                       bytes_per_graph=dict(v.chunk_bytes) if v.chunk_bytes else None)
            st = {k: percentiles(x) for k, x in stages[v.name].items()}
            total = st["total"]
            row.update(host_share(stages[v.name], [g["name"] for g in manifest["graphs"]]))
            row.update(stages=st, cold_start_s=round(v.cold_start_s, 3),
                       chunks_per_s=round(1000.0 / total["mean_ms"], 2),
                       select_action=percentiles(amortized[v.name]),
                       select_action_queued=percentiles(queued[v.name]) if queued[v.name] else None,
                       control=control_rates(total["p99_ms"], (percentiles(queued[v.name])["p99_ms"]
                                                               if queued[v.name] else 0.0), n_steps))
            if flops:
                gflops = flops / (total["p50_ms"] / 1e3) / 1e9
                row.update(achieved_gflops=round(gflops, 1),
                           roofline_fraction=round(gflops / machine["gemm_peak_gflops"], 3))
                if v.precision == "bf16" and machine.get("bf16_gemm_peak_gflops"):   # against the bf16 ceiling
                    row["bf16_roofline_fraction"] = round(gflops / machine["bf16_gemm_peak_gflops"], 3)
            if v.backend in EAGER:
                eager_p50[v.backend] = total["p50_ms"]
        rows.append(row)
    for row in rows:
        for eager, p50 in eager_p50.items():
            if row.get("stages"):
                row[f"speedup_vs_{eager}"] = round(p50 / row["stages"]["total"]["p50_ms"], 2)
    return {"schema_version": SCHEMA_VERSION, "source": str(source), "policy": manifest["policy"]["type"],
            "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
            "graphs": [g["name"] for g in manifest["graphs"]], "flops_per_chunk": flops,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "machine": machine, "results": rows}
