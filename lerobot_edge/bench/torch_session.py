"""Eager PyTorch as one more backend: our export modules behind the Session interface, so the bench runs
them through exactly the same runtime (pre/post-processing, queues, samplers) as every engine."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ..bundle import Bundle
from ..runtime.loader import _runtime_class
from ..runtime.policy import EdgePolicy


class TorchSession:
    def __init__(self, graph_plan, threads: int | None = None):
        import torch

        if threads:
            torch.set_num_threads(int(threads))
        self._torch = torch
        self.plan = graph_plan
        self.graph = graph_plan  # name / inputs / outputs, as a GraphSpec has

    def run(self, inputs: Mapping[str, Any], *, keep: tuple[str, ...] = ()) -> dict[str, Any]:
        torch = self._torch
        with torch.inference_mode():
            out = self.plan.module(*[torch.from_numpy(np.asarray(inputs[i.name])) for i in self.plan.inputs])
        out = out if isinstance(out, (tuple, list)) else (out,)
        # kept outputs stay torch tensors ("on the device"); the runtime passes them back untouched
        return {o.name: (t if o.name in keep else t.numpy()) for o, t in zip(self.plan.outputs, out)}


def load_torch_policy(bundle: str, checkpoint: str, threads: int | None = None) -> EdgePolicy:
    """An EdgePolicy whose graphs run in eager PyTorch (our modules, weights from `checkpoint`)."""
    from ..checkpoint import load_checkpoint
    from ..policies import build_plan

    b = Bundle.open(bundle)
    plan = build_plan(load_checkpoint(checkpoint, policy_type=b.manifest["policy"]["type"]),
                      rtc_exact=bool(b.manifest["runtime"].get("rtc_exact")))  # the graphs the bundle has
    sessions = {g.name: TorchSession(g, threads) for g in plan.graphs}
    return _runtime_class(b.manifest["runtime"]["kind"])(b, "torch", sessions, {})
