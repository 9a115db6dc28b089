"""The end-to-end export check every policy with a host loop uses (Diffusion's scheduler, the pi family's
Euler steps and RTC, VQ-BeT's code draw): the bundle's own runtime runs twice on the same observations and the
same draws, once on the target's engine and once on our PyTorch modules (TorchSession), and the action chunks
are compared in normalized units (divided by the action scale), as the project's tolerances are.

The per-graph validation compares each graph on random inputs; it cannot see errors that compound over N
sampler steps, nor a code drawn differently because its logits moved across a draw's boundary. A policy
supplies only its calls (policies.plan.ChunkCheck).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..accuracy import GraphReport, compare
from ..backends import get_backend
from ..bundle import Bundle
from ..kernels.normalize import action_scale
from ..policies.plan import ChunkCheck, GraphPlan
from ..registry import runtime_class
from .targets import tolerance_for
from .torch_session import torch_policy

TOLERANCE = {"action": {"atol": 1e-4, "min_cosine": 0.99999}}   # normalized units, fp32, full chunk


def run_chunk_check(check: ChunkCheck, graphs: list[GraphPlan], bundle: Bundle, backend_name: str, options: dict,
                    precision: str) -> GraphReport:
    """`check`'s calls on `bundle` with `backend_name` and on eager PyTorch (`graphs`, or check.graphs) ->
    the report of the `sampled_chunk` pseudo-graph."""
    runner = get_backend(backend_name)()
    sessions = {n: runner.load(s, bundle, options) for n, s in bundle.graphs.items()}
    engine_cls = runtime_class(bundle.manifest["runtime"]["kind"])
    reference = check.graphs or graphs
    engines: dict[str, Any] = {}
    eagers: dict[str, Any] = {}
    key = bundle.manifest["action"]["key"]
    scale = action_scale(bundle.manifest["normalization"].get(key, "IDENTITY"), bundle.stats().get(key, {}))
    expected, actual = [], []
    for call in check.calls(bundle, np.random.default_rng(check.seed)):
        tag = repr(sorted(call.overrides.items()))
        if tag not in engines:
            engines[tag] = engine_cls(bundle, backend_name, sessions, dict(call.overrides))
            eagers[tag] = torch_policy(bundle, reference, call.overrides, kind=check.runtime_kind)
        expected.append({"action": eagers[tag].predict_action_chunk(call.obs, **call.kwargs) / scale})
        actual.append({"action": engines[tag].predict_action_chunk(call.obs, **call.kwargs) / scale})
    return compare("sampled_chunk", backend_name, expected, actual, tolerance_for(precision, TOLERANCE))
