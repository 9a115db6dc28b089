"""End-to-end export check for VQ-BeT: a sampled chunk through both graphs and the host's code draw.

The per-graph validation compares each graph on random inputs; this runs the bundle's runtime
(`VQBeTEdgePolicy`: history, inverse-CDF draws, offsets) twice on the same observations and the same
uniforms, once on the target's engine and once on our PyTorch modules, so a code drawn differently (logits
that moved across a draw's boundary) shows up as an action error. Errors are in normalized action units.
"""

from __future__ import annotations

import numpy as np

from ...bundle import Bundle
from ...kernels.normalize import action_scale
from ..diffusion.validate import BATCH, TorchGraphSession, _observations
from ..plan import GraphPlan

SEED = 20240603
DRAWS = 4                                                         # uniforms per observation: several codes
TOLERANCE = {"action": {"atol": 1e-4, "min_cosine": 0.99999}}     # normalized units, fp32, full chunk


def chunk_check(graphs: list[GraphPlan]):
    """The ExportPlan.end_to_end hook: (bundle, backend name, backend options, precision) -> GraphReport."""
    def check(bundle: Bundle, backend_name: str, options: dict, precision: str):
        from ...accuracy import compare
        from ...backends import get_backend
        from ...exporters.targets import tolerance_for
        from ...runtime.vqbet import VQBeTEdgePolicy

        runner = get_backend(backend_name)()
        engine = VQBeTEdgePolicy(bundle, backend_name, {n: runner.load(s, bundle, options)
                                                        for n, s in bundle.graphs.items()}, {})
        eager = VQBeTEdgePolicy(bundle, "torch", {g.name: TorchGraphSession(g) for g in graphs}, {})
        rng = np.random.default_rng(SEED)
        obs = _observations(bundle.manifest["observations"], rng)[0]
        uniforms = [rng.random((BATCH, *bundle.manifest["noise_shape"][1:])) for _ in range(DRAWS)]
        key = bundle.manifest["action"]["key"]
        scale = action_scale(bundle.manifest["normalization"].get(key, "IDENTITY"), bundle.stats().get(key, {}))
        expected = [{"action": eager.predict_action_chunk(obs, noise=u) / scale} for u in uniforms]
        actual = [{"action": engine.predict_action_chunk(obs, noise=u) / scale} for u in uniforms]
        return compare("sampled_chunk", backend_name, expected, actual, tolerance_for(precision, TOLERANCE))
    return check
