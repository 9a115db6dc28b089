"""Cost of RTC "exact" (denoise_rtc: velocity + VJP) against "guided" (denoise + numpy), per denoise step and
per chunk, on a reduced and a mid-size pi0; and how far apart their chunks are.

    python benchmarks/rtc_exact_cost.py --size reduced [--rounds 5] [--out benchmarks/results/rtc_exact_reduced.json]
    python benchmarks/rtc_exact_cost.py --size mid

reduced: dummy Gemma (width 64, depth 4) for VLM and expert, tiny SigLIP, 2 cameras; mid: gemma_300m for both
(depth 18, 311 M parameters each), tiny SigLIP, 1 camera. Both: chunk 50, 10 steps, 48 language tokens,
random weights. The bundle (target openvino: ONNX + IR) is exported once with rtc_exact=True; each backend is
timed in its own block with guided and exact chunks interleaved round by round (median of the rounds).
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SIZES = {"reduced": None, "mid": ["--vlm", "gemma_300m", "--vision", "tiny", "--vocab", "1024", "--cameras", "1"]}


def checkpoint(size: str, work: Path) -> Path:
    d = work / f"pi0_{size}"
    if (d / "model.safetensors").exists():
        return d
    if size == "reduced":
        from lerobot_edge.testing.checkpoints.pi import write_pi0_checkpoint, write_tokenizer

        return write_pi0_checkpoint(d, write_tokenizer(work / "tokenizer"), chunk_size=50, tokenizer_max_length=48,
                                    state_dim=14, action_dim=14)
    subprocess.run([sys.executable, str(ROOT / "scripts" / "write_full_pi0.py"), str(d), *SIZES[size]], check=True)
    return d


def observation(policy, rng: np.random.Generator) -> dict:
    from lerobot_edge.runtime.observations import random_observation

    return {**random_observation(policy.manifest["observations"], rng), "task": "pick the red cube"}


def scale(policy) -> np.ndarray:
    from lerobot_edge.kernels.normalize import action_scale

    key = policy.manifest["action"]["key"]
    return action_scale(policy.manifest["normalization"].get(key, "IDENTITY"), policy.bundle.stats().get(key, {}))


class Recorder:
    """Wraps the denoise_rtc session: per step, how far the exact correction is from LeRobot's guided one (err),
    ||correction - err|| / ||err|| over the whole (T, Amax) step."""

    def __init__(self, session):
        self.session, self.graph, self.rel = session, session.graph, []

    def run(self, inputs, *, keep=()):
        out = self.session.run(inputs, keep=keep)
        t, w = inputs["time"][:, None, None], inputs["rtc_weights"][None, :, None]
        err = (inputs["prev"] - (inputs["x_t"] - t * out["v_t"])) * w
        self.rel.append(float(np.linalg.norm(out["correction"] - err) / max(np.linalg.norm(err), 1e-12)))
        return out


def time_backend(bundle: Path, backend: str, rounds: int, threads: int) -> dict:
    """Guided and exact chunks interleaved; -> medians (s) of chunk total and per-step graph time, and the
    exact-vs-guided chunk difference in normalized action units."""
    from lerobot_edge import load_policy
    from lerobot_edge.runtime.policies.flow import FlowMatchingEdgePolicy

    opts = {"threads": threads}
    exact = load_policy(bundle, backend, rtc="exact", backend_options=opts, allow_unvalidated=True)
    # the same engine sessions behind both modes: one copy of the weights per backend block
    guided = FlowMatchingEdgePolicy(exact.bundle, backend, dict(exact.sessions), {"rtc": "guided"})
    rng = np.random.default_rng(0)
    obs = observation(guided, rng)
    noise = rng.standard_normal(tuple(guided.manifest["noise_shape"][1:])).astype(np.float32)
    a = guided.manifest["action"]["shape"][0]
    left = {"inference_delay": 3, "prev_chunk_left_over": rng.standard_normal((25, a)).astype(np.float32)}
    steps = guided.num_steps
    rec = {m: {"total": [], "step": []} for m in ("guided", "exact")}
    chunks = {}
    for r in range(rounds + 1):  # round 0 warms up
        for mode, policy, graph in (("guided", guided, "denoise"), ("exact", exact, "denoise_rtc")):
            chunks[mode] = policy.predict_action_chunk(obs, noise=noise, **left)
            if r:
                rec[mode]["total"].append(policy.timings["total"])
                rec[mode]["step"].append(policy.timings[graph] / steps)
    plain = guided.predict_action_chunk(obs, noise=noise)
    exact.sessions["denoise_rtc"] = rec_rtc = Recorder(exact.sessions["denoise_rtc"])
    exact.predict_action_chunk(obs, noise=noise, **left)
    s = scale(guided)
    med = {m: {k: float(np.median(v)) for k, v in d.items()} for m, d in rec.items()}
    return {"median_s": med, "rounds": rounds,
            "ratio_step_exact_over_guided": med["exact"]["step"] / med["guided"]["step"],
            "ratio_chunk_exact_over_guided": med["exact"]["total"] / med["guided"]["total"],
            "max_abs_exact_minus_guided_normalized": float(np.abs((chunks["exact"] - chunks["guided"]) / s).max()),
            "max_abs_guided_minus_unguided_normalized": float(np.abs((chunks["guided"] - plain) / s).max()),
            "per_step_rel_diff_correction_vs_err": [round(r, 4) for r in rec_rtc.rel]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", choices=sorted(SIZES), default="reduced")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--backends", default="onnxruntime,openvino")
    p.add_argument("--work", type=Path, default=Path("/tmp/lerobot_edge_rtc_exact"))
    p.add_argument("--validate", action="store_true", help="validate the export (slow at mid size)")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    from lerobot_edge import export

    args.work.mkdir(parents=True, exist_ok=True)
    ckpt = checkpoint(args.size, args.work)
    t0 = time.perf_counter()
    bundle = export(ckpt, args.work / f"bundle_{args.size}", "openvino", rtc_exact=True,
                    validate=args.validate or args.size == "reduced", overwrite=True)
    result = {"size": args.size, "export_s": round(time.perf_counter() - t0, 1), "machine": platform.processor()
              or platform.machine(), "threads": args.threads,
              "validation": json.loads((bundle / "manifest.json").read_text())["validation"].get("lines", []),
              "backends": {}}
    for b in args.backends.split(","):  # one backend's sessions at a time (freed before the next block)
        result["backends"][b] = time_backend(bundle, b, args.rounds, args.threads)
        gc.collect()
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
