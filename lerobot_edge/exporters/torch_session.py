"""Eager PyTorch as one more session (Polygraphy's `backend/pyt` runner): a GraphPlan's module behind the
backend Session interface, so our PyTorch modules run through exactly the same runtime (observation checks,
normalization, queues, samplers, RTC) as every engine.

Every torch reference of the project goes through here: the per-graph export validation, the end-to-end chunk
checks (chunk_check.py), `validate --dataset`, and the bench's `torch` variant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from ..bundle import Bundle
from ..policies.plan import GraphPlan
from ..runtime.policy import EdgePolicy


class TorchSession:
    """`run(inputs, keep=()) -> outputs` over `graph.module`. Inputs: numpy arrays or tensors an earlier `run`
    kept; outputs named in `keep` stay torch tensors (the "device handle" of this backend)."""

    def __init__(self, graph: GraphPlan, threads: int | None = None):
        if threads:
            torch.set_num_threads(int(threads))
        self.plan = graph
        self.graph = graph  # name / inputs / outputs, as a GraphSpec has

    def run(self, inputs: Mapping[str, Any], *, keep: tuple[str, ...] = ()) -> dict[str, Any]:
        with torch.inference_mode():
            out = self.plan.module(*[torch.as_tensor(inputs[i.name]) for i in self.plan.inputs])
        out = out if isinstance(out, (tuple, list)) else (out,)
        return {o.name: (t if o.name in keep else t.numpy()) for o, t in zip(self.plan.outputs, out)}


def torch_outputs(graph: GraphPlan, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One eager call of `graph` on numpy inputs -> numpy outputs by name."""
    return TorchSession(graph).run(inputs)


def torch_policy(bundle: Bundle, graphs: list[GraphPlan], overrides: Mapping[str, Any] | None = None,
                 kind: str | None = None, threads: int | None = None) -> EdgePolicy:
    """The bundle's runtime (or that of runtime kind `kind`) with every graph on eager PyTorch."""
    from ..registry import runtime_class

    sessions = {g.name: TorchSession(g, threads) for g in graphs}
    cls = runtime_class(kind or bundle.manifest["runtime"]["kind"])
    return cls(bundle, "torch", sessions, dict(overrides or {}))


def load_torch_policy(bundle: str | Path, checkpoint: str | Path, threads: int | None = None,
                      overrides: Mapping[str, Any] | None = None) -> EdgePolicy:
    """An EdgePolicy whose graphs run in eager PyTorch: our modules with the weights of `checkpoint`, built
    with the export options the bundle was made with (so it has the same graphs)."""
    from ..checkpoint import load_checkpoint
    from ..policies import build_plan

    b = Bundle.open(bundle)
    ckpt = load_checkpoint(checkpoint, policy_type=b.manifest["policy"]["type"])
    plan = build_plan(ckpt, **export_options_of(b.manifest))
    return torch_policy(b, plan.graphs, overrides, threads=threads)


def export_options_of(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The export options that shaped a bundle's graphs, as recorded in its manifest (so a rebuilt plan
    matches it: the fused Diffusion loop, pi's RTC exact graph, SmolVLA's VLM config, preprocessing in the graphs)."""
    rt, cfg = manifest["runtime"], manifest["policy"]["config"]
    return {"fuse_loop": bool(rt.get("fuse_loop")), "rtc_exact": bool(rt.get("rtc_exact")),
            "vlm": cfg.get("vlm_source"), "preprocess_in_graph": bool((manifest.get("preprocess") or {}).get("in_graph"))}
