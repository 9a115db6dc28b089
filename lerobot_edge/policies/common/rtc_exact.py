"""RTC "exact": the paper's ΠGDM guidance with the true vector-Jacobian product through the denoiser, as a
second step graph `denoise_rtc` beside `denoise`.

    x1 = x_t - t * v(x_t)                      predicted clean chunk
    err = (prev - x1) * w                      weighted distance to the previous chunk's leftover
    correction = err^T d(x1)/d(x_t)            = err - t * (dv/dx_t)^T err
The host then uses `v - gw(t) * correction`, with the same guidance weight and prefix schedule as "guided".
LeRobot's RTCProcessor ("guided") computes `v` before `x_t` requires grad, so its autograd sees
d(x1)/d(x_t) = I and its correction is `err` itself; the term `-t (dv/dx_t)^T err` is what "exact" adds.

Export route: the dynamo exporter cannot trace `torch.func.vjp` directly (functorch wrappers have no
storage), so the VJP is first traced to a plain aten graph with `make_fx` (real tensors, core-aten
decompositions, so backward ops such as `_softmax_backward_data` become ops ONNX has), and that graph is
exported. A real-mode trace fixes every shape, so this graph has a fixed batch (`EXACT_BATCH` = 1, how a
robot runs); symbolic tracing concretizes the batch inside functorch's wrappers in torch 2.13.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ...bundle import IOSpec
from ..plan import GraphPlan

GRAPH = "denoise_rtc"
EXACT_BATCH = 1
# v_t as `denoise`; the correction is O(err) (leftover and x1 both O(1) in normalized units)
TOL_EXACT = {"v_t": {"atol": 1e-3, "min_cosine": 0.99999}, "correction": {"atol": 1e-3, "min_cosine": 0.99999}}


class ExactGuidance(nn.Module):
    """(denoise inputs..., time (B,), prev (B, T, Amax), weights (T,)) -> v_t (B, T, Amax), correction (B, T, Amax).

    `denoise` is the policy's DenoiseGraph; its inputs come first, in its order. Eager, this is the torch
    reference the exported graph is validated against (torch.func.vjp)."""

    def __init__(self, denoise: nn.Module, n_denoise_inputs: int):
        super().__init__()
        self.denoise = denoise
        self.n = n_denoise_inputs

    def forward(self, *inputs):
        x_t, rest = inputs[0], inputs[1: self.n]
        time, prev, weights = inputs[self.n:]
        with torch.inference_mode(False):  # callers may run under inference_mode; autograd needs plain tensors
            x_t, rest = x_t.clone(), [r.clone() for r in rest]
            time, prev, weights = time.clone(), prev.clone(), weights.clone()

            def predict(x):
                v = self.denoise(x, *rest)                                          # (B, T, Amax)
                return x - time[:, None, None] * v, v

            x1, vjp_fn, v_t = torch.func.vjp(predict, x_t, has_aux=True)
            err = (prev - x1) * weights[None, :, None]                              # (B, T, Amax)
            (correction,) = vjp_fn(err)
        return v_t.detach(), correction.detach()


def _empty_permuted(size, physical_layout, *, dtype=None, layout=None, device=None, pin_memory=None):
    """ONNX has no aten.empty_permuted (functorch's ones-like seed of the backward); its values are always
    overwritten, so zeros of the same size are equivalent."""
    return torch.zeros(size, dtype=dtype, device=device)


def trace_exact(module: ExactGuidance, example: dict[str, np.ndarray], inputs: list[IOSpec]) -> nn.Module:
    """make_fx of the eager VJP on the example inputs -> a GraphModule of plain aten ops (weights as constants)
    that torch.onnx.export(dynamo=True) can export."""
    from torch._decomp import core_aten_decompositions
    from torch.fx.experimental.proxy_tensor import make_fx

    table = core_aten_decompositions()
    table[torch.ops.aten.empty_permuted.default] = _empty_permuted
    module = module.eval().requires_grad_(False)
    args = [torch.from_numpy(example[i.name]) for i in inputs]
    traced = make_fx(module, tracing_mode="real", decomposition_table=table)(*args)
    traced.graph.eliminate_dead_code()  # drops unused size() reads of functorch's wrappers
    traced.recompile()
    return traced.eval()


def exact_inputs(denoise_inputs: list[IOSpec], chunk: int, action_dim: int) -> list[IOSpec]:
    """The denoise graph's inputs at the fixed batch, plus time (B,), prev (B, T, Amax), rtc_weights (T,)."""
    fixed = [IOSpec(i.name, tuple(EXACT_BATCH if s == "batch" else s for s in i.shape), i.dtype)
             for i in denoise_inputs]
    return [*fixed, IOSpec("time", (EXACT_BATCH,)), IOSpec("prev", (EXACT_BATCH, chunk, action_dim)),
            IOSpec("rtc_weights", (chunk,))]


def exact_sampler(base, inputs: list[IOSpec]):
    """The denoise sampler's inputs, plus a time in (0, 1], an N(0, 1) leftover and prefix weights in [0, 1]."""
    def sample(rng: np.random.Generator, batch: int) -> dict[str, np.ndarray]:
        out = base(rng, EXACT_BATCH)
        shape = {i.name: i.shape for i in inputs}
        out["time"] = rng.uniform(0.05, 1.0, shape["time"]).astype(np.float32)
        out["prev"] = rng.standard_normal(shape["prev"]).astype(np.float32)
        out["rtc_weights"] = np.sort(rng.uniform(0, 1, shape["rtc_weights"]))[::-1].astype(np.float32).copy()
        return out
    return sample


def exact_graph(denoise: GraphPlan, chunk: int, action_dim: int) -> GraphPlan:
    """The `denoise_rtc` GraphPlan beside `denoise`: eager torch.func.vjp as reference, make_fx trace to export."""
    inputs = exact_inputs(denoise.inputs, chunk, action_dim)
    module = ExactGuidance(denoise.module, len(denoise.inputs))
    outputs = [IOSpec("v_t", (EXACT_BATCH, chunk, action_dim)), IOSpec("correction", (EXACT_BATCH, chunk, action_dim))]
    return GraphPlan(GRAPH, module, inputs, outputs, dict(TOL_EXACT), exact_sampler(denoise.sample_inputs, inputs),
                     export_module=lambda example: trace_exact(module, example, inputs))
