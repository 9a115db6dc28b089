"""make demo: LeRobot ACT checkpoint -> validated ONNX bundle -> torch-free runtime, with latencies.

With no argument it writes a random-weight ACT checkpoint in LeRobot's exact on-disk layout at the
aloha sim insertion config (1 camera 480x640, state 14, chunk 100), since the Hub is not always reachable.
With an argument (a Hub repo id or a checkpoint directory) it exports that instead.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "demo-out"


def cli(*args: str) -> None:
    print(f"\n$ lerobot-edge {' '.join(args)}", flush=True)
    subprocess.run([sys.executable, "-m", "lerobot_edge", *args], check=True)


def p50(xs: list[float]) -> str:
    return f"p50 {np.percentile(xs, 50) * 1e3:7.1f} ms   p90 {np.percentile(xs, 90) * 1e3:7.1f} ms"


def main() -> None:
    source = sys.argv[1] if len(sys.argv) > 1 else None
    if source is None:
        from lerobot_edge.testing.checkpoints.act import write_act_checkpoint

        source = str(write_act_checkpoint(OUT / "act_aloha_random", cameras={"observation.images.top": (3, 480, 640)},
                                          state_dim=14, action_dim=14, with_type=True))
        print(f"wrote a random-weight ACT checkpoint (aloha insertion config) in LeRobot's layout: {source}")
    bundle = OUT / "act-edge"
    cli("export", source, "--target", "onnx", "--output", str(bundle), "--overwrite")
    cli("info", str(bundle))

    from lerobot_edge import load_policy  # numpy + onnxruntime from here on
    from lerobot_edge.runtime.observations import random_observation

    policy = load_policy(bundle, backend="onnxruntime")
    spec = policy.observation_spec
    rng = np.random.default_rng(0)
    def obs():
        return random_observation(spec, rng)
    policy.reset()
    steps, engine = [], []
    for i in range(10):
        t0 = time.perf_counter()
        action = policy.select_action(obs())
        steps.append(time.perf_counter() - t0)
        if policy.timings["act"] > 0:
            engine.append(policy.timings["act"])
        print(f"step {i}: action[:4] = {np.array2string(action[:4], precision=3)}  "
              f"({steps[-1] * 1e3:.1f} ms{', new chunk' if policy.timings['act'] else ''})")
    chunks = []
    for _ in range(5):
        t0 = time.perf_counter()
        policy.predict_action_chunk(obs())
        chunks.append(time.perf_counter() - t0)
    print(f"\nonnxruntime  predict_action_chunk (end to end): {p50(chunks)}")
    print(f"onnxruntime  select_action, queue pop:              {p50(steps[1:])}")
    eager = eager_latency(source, policy, obs)
    if eager:
        print(f"torch eager  predict_action_chunk (same module):    {p50(eager)}   "
              f"speed-up x{np.median(eager) / np.median(chunks):.2f}")


def eager_latency(source: str, policy, obs) -> list[float]:
    """The same graph in eager PyTorch with the same host pre/post-processing, for comparison."""
    import torch

    from lerobot_edge.checkpoint import load_checkpoint
    from lerobot_edge.policies import build_plan

    g = build_plan(load_checkpoint(source)).graphs[0]
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        feed, _ = policy.preprocess(obs())
        with torch.no_grad():
            y = g.module(*[torch.from_numpy(feed[i.name]) for i in g.inputs]).numpy()
        policy.postprocess(y)
        times.append(time.perf_counter() - t0)
    return times


if __name__ == "__main__":
    main()
