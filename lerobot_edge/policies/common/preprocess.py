"""Preprocessing inside the graph (`export(..., preprocess_in_graph=True)`): the graphs take camera frames as
uint8 HWC RGB and do in torch exactly the arithmetic the host does in numpy (runtime/observations.py and
processors.py: cast, /255, LeRobot's normalization with the bundle's stats; runtime/policies/flow.py with
kernels/image.py: the VLAs' resize with pad and [-1, 1] scaling), so a bundle exported with it gives the host
path's actions to float rounding while uint8 frames (4x fewer bytes than float32) are what reaches the engine.

A policy opts in with the registry export option `preprocess_in_graph` and describes its host steps in
`ExportPlan.frame_steps` (default: cast, scale, normalize). Two plan shapes:
- each camera is its own graph input (ACT, Diffusion, VQ-BeT, SAC, TDMPC): the steps are fused into every
  graph that takes it (`PreprocessedGraph`); the input becomes (..., H, W, 3) uint8;
- one vision graph serves every camera (VLAs, `fuse=False`): one small `frames_<H>x<W>` graph per camera
  frame size turns the frame into the vision input, which the runtime keeps on the backend (a device handle)
  and feeds to the unchanged vision graph, so cameras of different sizes need no second copy of the weights.
Frame sizes are fixed at export (the checkpoint's feature shapes); the state stays normalized on the host (a
few floats; pi05 writes it into the prompt on the host anyway).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...bundle import IOSpec
from ...kernels.image import bilinear_taps, pad_geometry
from ...kernels.normalize import EPS, MODE_STATS, _span
from ..plan import ExportPlan, FrameSteps, GraphPlan

RAW = "uint8_hwc"   # observation spec "frame": the camera frame goes to the graph as it comes from the camera
FRAME_INPUT = "frame"
TOL_FRAMES = {"atol": 1e-5, "min_cosine": 0.99999}   # pixels in [-1, 1] / [0, 1]: float rounding only


class FrameOps(nn.Module):
    """uint8 frames (..., H, W, 3) -> float32 (..., 3, H', W'): the host's steps (FrameSteps) in its order and
    float32 constants (MEAN_STD: (x - mean) / (std + eps); MIN_MAX/QUANTILES: 2 (x - lo) / span - 1; resize:
    the same two-tap bilinear gathers and weights as kernels/image.py)."""

    def __init__(self, steps: FrameSteps, frame: tuple[int, int], mode: str = "IDENTITY",
                 stats: dict[str, np.ndarray] | None = None, legacy: bool = False):
        super().__init__()
        self.mode = mode if steps.normalize else "IDENTITY"
        self.signed, self.clamp = steps.signed, steps.clamp
        if self.mode != "IDENTITY":
            lo, hi = (np.asarray(stats[k], np.float32) for k in MODE_STATS[self.mode])
            lo, hi = (v.reshape(-1, 1, 1) if v.ndim == 1 else v for v in (lo, hi))   # (C,) -> (C, 1, 1)
            div = hi + np.float32(EPS) if self.mode == "MEAN_STD" else _span(lo, hi, legacy)
            self.register_buffer("lo", torch.from_numpy(np.ascontiguousarray(lo)), persistent=False)
            self.register_buffer("div", torch.from_numpy(np.ascontiguousarray(div, np.float32)), persistent=False)
        self.pad: tuple[int, int, int, int] | None = None
        self.resize = False
        h, w = frame
        size = steps.resize_with_pad
        if size is not None and (h, w) != (size, size):
            rh, rw, top, left = pad_geometry(h, w, size, steps.center)
            self.pad = (left, size - rw - left, top, size - rh - top)   # F.pad order: W then H
            self.resize = (rh, rw) != (h, w)   # the host skips the interpolation when only padding is needed
            for axis, n_in, n_out in (("h", h, rh), ("w", w, rw)):
                i0, i1, l0, l1 = bilinear_taps(n_in, n_out)
                shape = (-1, 1) if axis == "h" else (-1,)
                self.register_buffer(f"{axis}0", torch.from_numpy(i0), persistent=False)
                self.register_buffer(f"{axis}1", torch.from_numpy(i1), persistent=False)
                self.register_buffer(f"{axis}l0", torch.from_numpy(l0.reshape(shape)), persistent=False)
                self.register_buffer(f"{axis}l1", torch.from_numpy(l1.reshape(shape)), persistent=False)
        self.out_hw = (size, size) if self.pad is not None else (h, w)

    def forward(self, frame: torch.Tensor) -> torch.Tensor:
        x = frame.movedim(-1, -3).to(torch.float32) / 255.0                      # (..., H, W, 3) -> (..., 3, H, W)
        if self.mode == "MEAN_STD":
            x = (x - self.lo) / self.div
        elif self.mode != "IDENTITY":
            x = 2.0 * (x - self.lo) / self.div - 1.0
        if self.pad is not None:
            if self.resize:
                rows0, rows1 = x.index_select(-2, self.h0), x.index_select(-2, self.h1)   # (..., 3, rh, W)
                top = rows0.index_select(-1, self.w0) * self.wl0 + rows0.index_select(-1, self.w1) * self.wl1
                bot = rows1.index_select(-1, self.w0) * self.wl0 + rows1.index_select(-1, self.w1) * self.wl1
                x = top * self.hl0 + bot * self.hl1                                 # (..., 3, rh, rw)
            if self.clamp:
                x = x.clamp(0.0, 1.0)
            x = F.pad(x, self.pad, value=0.0)                                      # (..., 3, size, size)
        if self.signed:
            x = x * 2.0 - 1.0
        return x


class PreprocessedGraph(nn.Module):
    """`inner` with FrameOps applied to the inputs at the positions of `ops` (its other inputs pass through)."""

    def __init__(self, inner: nn.Module, ops: dict[int, FrameOps]):
        super().__init__()
        self.inner = inner
        self.ops = nn.ModuleDict({str(i): op for i, op in ops.items()})

    def forward(self, *inputs: torch.Tensor):
        return self.inner(*[self.ops[str(i)](x) if str(i) in self.ops else x for i, x in enumerate(inputs)])


def _raw_sampler(base, raw: dict[str, tuple]):
    """`base`'s seeded inputs with uniform uint8 frames for the inputs named in `raw` (name -> shape)."""
    def sample(rng: np.random.Generator, batch: int) -> dict[str, np.ndarray]:
        x = base(rng, batch)
        for name, shape in raw.items():
            x[name] = rng.integers(0, 256, [batch if isinstance(d, str) else d for d in shape], dtype=np.uint8)
        return x
    return sample


def _raw_shape(spec: IOSpec, key: str, feature: list[int], graph: str) -> tuple:
    """(..., 3, H, W) float input -> (..., H, W, 3); its last three dims must be the feature's shape."""
    if list(spec.shape[-3:]) != list(feature):
        raise ValueError(f"preprocess_in_graph: graph {graph!r} input {spec.name!r} has shape {list(spec.shape)}, "
                         f"which does not end in the camera {key!r} feature shape {feature}")
    c, h, w = feature
    return (*spec.shape[:-3], h, w, c)


def _fused(plan: ExportPlan, cams: dict[str, dict], ops) -> tuple[dict[int, GraphPlan], dict[str, dict]]:
    """Every graph taking a camera, wrapped: -> {id(original): wrapped}, camera -> {"graph", "input"}."""
    by_input = {o["graph_input"]: k for k, o in cams.items()}
    if len(by_input) < len(cams):
        raise ValueError(f"preprocess_in_graph: cameras of {plan.policy_type} share a graph input; its plan must "
                         "set frame_steps.fuse=False")
    graphs = [*plan.graphs, *((plan.end_to_end.graphs or []) if plan.end_to_end else [])]
    wrapped: dict[int, GraphPlan] = {}
    where: dict[str, dict] = {}
    for g in graphs:
        idx = {i: by_input[s.name] for i, s in enumerate(g.inputs) if s.name in by_input}
        if not idx or id(g) in wrapped:
            continue
        if g.export_module is not None:
            raise ValueError(f"preprocess_in_graph: graph {g.name!r} has its own export module; not supported")
        raw = {g.inputs[i].name: _raw_shape(g.inputs[i], k, cams[k]["shape"], g.name) for i, k in idx.items()}
        inputs = [IOSpec(s.name, raw[s.name], "uint8") if s.name in raw else s for s in g.inputs]
        module = PreprocessedGraph(g.module, {i: ops(k) for i, k in idx.items()})
        wrapped[id(g)] = dataclasses.replace(g, module=module, inputs=inputs,
                                             sample_inputs=_raw_sampler(g.sample_inputs, raw))
        if any(g is e for e in plan.graphs):
            for k in idx.values():
                if k in where:
                    raise ValueError(f"preprocess_in_graph: camera {k!r} feeds several graphs; not supported")
                where[k] = {"graph": g.name, "input": cams[k]["graph_input"]}
    return wrapped, where


def _frames_graphs(plan: ExportPlan, cams: dict[str, dict], ops) -> tuple[list[GraphPlan], dict[str, dict]]:
    """One `frames_<H>x<W>` graph per camera frame size: frame (B, H, W, 3) uint8 -> the shared image input."""
    if plan.frame_steps.normalize:
        raise ValueError("preprocess_in_graph: per-feature normalization needs frame_steps.fuse=True")
    names = {o["graph_input"] for o in cams.values()}
    consumers = {s.name: (g.name, s) for g in plan.graphs for s in g.inputs if s.name in names}
    graphs: dict[tuple[int, int], GraphPlan] = {}
    where: dict[str, dict] = {}
    for key, o in cams.items():
        c, h, w = o["shape"]
        target, spec = consumers[o["graph_input"]]
        if (h, w) not in graphs:
            module = ops(key).eval()
            out = (*spec.shape[:-2], *module.out_hw)
            if list(out) != list(spec.shape):
                raise ValueError(f"preprocess_in_graph: camera {key!r} frames become {list(out)}, graph {target!r} "
                                 f"input {spec.name!r} takes {list(spec.shape)}")
            frame = IOSpec(FRAME_INPUT, ("batch", h, w, c), "uint8")
            sample = _raw_sampler(lambda rng, batch: {}, {FRAME_INPUT: frame.shape})
            graphs[(h, w)] = GraphPlan(f"frames_{h}x{w}", module, [frame], [IOSpec(spec.name, spec.shape)],
                                       {spec.name: TOL_FRAMES}, sample)
        where[key] = {"graph": graphs[(h, w)].name, "input": FRAME_INPUT, "output": spec.name, "feeds": target}
    return list(graphs.values()), where


def _steps_text(s: FrameSteps) -> list[str]:
    out = ["uint8 HWC -> float32 CHW, / 255"]
    if s.normalize:
        out.append("normalize (the feature's mode and the bundle's stats)")
    if s.resize_with_pad:
        out.append(f"resize_with_pad {s.resize_with_pad} ({'center' if s.center else 'top_left'}"
                   f"{', clamp [0, 1]' if s.clamp else ''})")
    if s.signed:
        out.append("x * 2 - 1")
    return out


def in_graph(plan: ExportPlan) -> ExportPlan:
    """`plan` with its host frame steps moved into the graphs; the observation spec marks the cameras raw
    (`"frame": "uint8_hwc"`) and `plan.preprocess` becomes the manifest's `preprocess` section."""
    cams = {k: o for k, o in plan.observations.items() if o["kind"] == "image"}
    if not cams:
        raise ValueError(f"preprocess_in_graph: this {plan.policy_type} checkpoint has no camera input; export "
                         "it without preprocess_in_graph")
    steps = plan.frame_steps

    def ops(key: str) -> FrameOps:
        _, h, w = cams[key]["shape"]
        return FrameOps(steps, (h, w), plan.normalization.get(key, "IDENTITY"), plan.stats.get(key),
                        plan.legacy_stats)

    end_to_end = plan.end_to_end
    if steps.fuse:
        wrapped, where = _fused(plan, cams, ops)
        graphs = [wrapped.get(id(g), g) for g in plan.graphs]
        if end_to_end is not None and end_to_end.graphs:
            end_to_end = dataclasses.replace(end_to_end, graphs=[wrapped.get(id(g), g) for g in end_to_end.graphs])
    else:
        frames, where = _frames_graphs(plan, cams, ops)
        graphs = [*frames, *plan.graphs]
        if end_to_end is not None and end_to_end.graphs:
            end_to_end = dataclasses.replace(end_to_end, graphs=[*frames, *end_to_end.graphs])
    for key, w in where.items():
        w.update(frame=[cams[key]["shape"][1], cams[key]["shape"][2], cams[key]["shape"][0]],
                 normalize=plan.normalization.get(key, "IDENTITY") if steps.normalize else "IDENTITY")
    observations = {k: ({**o, "frame": RAW} if k in cams else dict(o)) for k, o in plan.observations.items()}
    preprocess = {"in_graph": True, "state": "host", "steps": _steps_text(steps), "cameras": where}
    return dataclasses.replace(plan, graphs=graphs, observations=observations, end_to_end=end_to_end,
                               preprocess=preprocess)
