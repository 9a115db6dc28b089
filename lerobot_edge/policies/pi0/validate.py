"""End-to-end export check for the pi family: the sampled chunk (vision -> prefix -> N denoise steps, host
Euler loop) with shared noise, engine vs our PyTorch modules through the same FlowMatchingEdgePolicy; errors
in normalized action units. Once without and once with RTC guidance (a seeded leftover), and with RTC "exact"
too when the bundle has its `denoise_rtc` graph."""

from __future__ import annotations

import numpy as np

from ...bundle import Bundle
from ...kernels.normalize import action_scale
from ..diffusion.validate import TorchGraphSession
from ..plan import GraphPlan

SEED = 20240603
TOLERANCE = {"action": {"atol": 1e-4, "min_cosine": 0.99999}}   # normalized units, fp32, full chunk
TASK = "pick the red cube"


def _observation(spec: dict, rng: np.random.Generator) -> dict:
    from ...runtime.observations import random_observation

    return {**random_observation(spec, rng), "task": TASK}


def chunk_check(graphs: list[GraphPlan]):
    """The ExportPlan.end_to_end hook: (bundle, backend name, backend options, precision) -> GraphReport."""
    def check(bundle: Bundle, backend_name: str, options: dict, precision: str):
        from ...accuracy import compare
        from ...backends import get_backend
        from ...exporters.targets import tolerance_for
        from ...runtime.flow import FlowMatchingEdgePolicy

        runner = get_backend(backend_name)()
        sessions = {n: runner.load(s, bundle, options) for n, s in bundle.graphs.items()}
        torch_sessions = {g.name: TorchGraphSession(g) for g in graphs}
        modes = ["guided", "exact"] if "denoise_rtc" in bundle.graphs else ["guided"]
        engine = [FlowMatchingEdgePolicy(bundle, backend_name, sessions, {"rtc": m, "seed": SEED}) for m in modes]
        eager = [FlowMatchingEdgePolicy(bundle, "torch", torch_sessions, {"rtc": m, "seed": SEED}) for m in modes]
        rng = np.random.default_rng(SEED)
        obs = _observation(bundle.manifest["observations"], rng)
        noise = rng.standard_normal((1, *bundle.manifest["noise_shape"][1:])).astype(np.float32)
        a = bundle.manifest["action"]["shape"][0]
        left = {"inference_delay": 2, "prev_chunk_left_over": rng.standard_normal((4, a)).astype(np.float32)}
        key = bundle.manifest["action"]["key"]
        scale = action_scale(bundle.manifest["normalization"].get(key, "IDENTITY"), bundle.stats().get(key, {}))
        calls = [(0, {}), *((k, left) for k in range(len(modes)))]   # plain, then each RTC mode
        expected = [{"action": eager[k].predict_action_chunk(obs, noise=noise, **kw) / scale} for k, kw in calls]
        actual = [{"action": engine[k].predict_action_chunk(obs, noise=noise, **kw) / scale} for k, kw in calls]
        return compare("sampled_chunk", backend_name, expected, actual, tolerance_for(precision, TOLERANCE))
    return check
