"""End-to-end export check for Diffusion Policy: the sampled chunk, through every graph and the host loop.

The per-graph validation compares each graph on random inputs; errors of the denoiser compound over the
N scheduler steps, so the chunk itself is compared too. The same runtime (`DiffusionEdgePolicy`: history,
scheduler, noise handling) runs twice on the same observations, initial noise and per-step noise seed: once
with the exported graphs on the target's backend, once with our PyTorch modules. Errors are in normalized
action units (divided by the action scale), as the project's tolerances are.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ...bundle import Bundle
from ...kernels.normalize import action_scale
from ..plan import GraphPlan

SEED = 20240602
# One chunk at batch 1: the per-graph validation already covers batch 2 and random histories; the chunk costs
# 2 x num_inference_steps denoiser calls (DDPM-100 at LeRobot's PushT size: ~1-3 min on 2 CPU cores).
TRIALS = 1
BATCH = 1
TOLERANCE = {"action": {"atol": 1e-4, "min_cosine": 0.99999}}   # normalized units, fp32, full chunk


class TorchGraphSession:
    """A GraphPlan's eager module behind the backend Session interface (kept outputs stay torch tensors)."""

    def __init__(self, graph: GraphPlan):
        self.plan = graph
        self.graph = graph

    def run(self, inputs: Mapping[str, Any], *, keep: tuple[str, ...] = ()) -> dict[str, Any]:
        import torch

        with torch.no_grad():  # a kept output comes back as the torch tensor it was handed out as
            out = self.plan.module(*[torch.as_tensor(inputs[i.name]) for i in self.plan.inputs])
        out = out if isinstance(out, (tuple, list)) else (out,)
        return {o.name: (t if o.name in keep else t.numpy()) for o, t in zip(self.plan.outputs, out)}


def _observations(spec: Mapping[str, dict], rng: np.random.Generator) -> list[dict[str, np.ndarray]]:
    """TRIALS batched observations: camera frames (B, H, W, 3) uint8, vectors (B, D) ~ N(0, 1)."""
    from ...runtime.observations import random_observation

    out = []
    for _ in range(TRIALS):
        frames = [random_observation(spec, rng) for _ in range(BATCH)]
        out.append({k: np.stack([f[k] for f in frames]) for k in spec})            # (B, …) per key
    return out


def _chunks(policy, observations, noises) -> list[np.ndarray]:
    policy.reset()
    return [policy.predict_action_chunk(o, noise=n) for o, n in zip(observations, noises)]


def chunk_check(graphs: list[GraphPlan]):
    """The ExportPlan.end_to_end hook: (bundle, backend name, backend options, precision) -> GraphReport.
    `graphs`: the stepped `encoder` and `denoise` plans (also for a fused bundle: then they are the reference)."""
    def check(bundle: Bundle, backend_name: str, options: dict, precision: str):
        from ...accuracy import compare
        from ...backends import get_backend
        from ...exporters.targets import tolerance_for
        from ...runtime.diffusion import DiffusionEdgePolicy
        from ...runtime.loader import _runtime_class

        runner = get_backend(backend_name)()
        sessions = {n: runner.load(s, bundle, options) for n, s in bundle.graphs.items()}
        # the bundle's own runtime (stepped or fused) on the engine; the stepped loop on PyTorch as reference
        engine = _runtime_class(bundle.manifest["runtime"]["kind"])(bundle, backend_name, sessions, {"seed": SEED})
        eager = DiffusionEdgePolicy(bundle, "torch", {g.name: TorchGraphSession(g) for g in graphs}, {"seed": SEED})
        rng = np.random.default_rng(SEED)
        obs = _observations(bundle.manifest["observations"], rng)
        shape = (BATCH, *bundle.manifest["noise_shape"][1:])                       # (B, horizon, A)
        noises = [rng.standard_normal(shape).astype(np.float32) for _ in range(TRIALS)]
        key = bundle.manifest["action"]["key"]
        scale = action_scale(bundle.manifest["normalization"].get(key, "IDENTITY"), bundle.stats().get(key, {}))
        expected = [{"action": c / scale} for c in _chunks(eager, obs, noises)]
        actual = [{"action": c / scale} for c in _chunks(engine, obs, noises)]
        return compare("sampled_chunk", backend_name, expected, actual, tolerance_for(precision, TOLERANCE))
    return check
