"""What a policy tells the generic exporter: its graphs (torch modules + IO) and the runtime's settings.

Exporters know no policy: they receive an `ExportPlan`, write each `GraphPlan` to a file and validate it
with `sample_inputs`. Each `policies/<name>/plan.py` builds one from a checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
from torch import nn

from ..bundle import IOSpec


def normal_sampler(specs: list[IOSpec]) -> Callable[[np.random.Generator, int], dict[str, np.ndarray]]:
    """Seeded, non-trivial N(0, 1) inputs for graph inputs `specs` (named axes take the batch size): the
    validation inputs of normalized observations (images ~ N(0, 1) like ImageNet-normalized pixels)."""
    def sample(rng: np.random.Generator, batch: int) -> dict[str, np.ndarray]:
        return {s.name: rng.standard_normal([batch if isinstance(d, str) else d for d in s.shape]).astype(np.float32)
                for s in specs}
    return sample


@dataclass(frozen=True)
class FrameSteps:
    """What the host does to a camera frame (uint8 HWC RGB) before the graph sees it, in order: cast to float32
    CHW and divide by 255, then [`normalize`] with the feature's LeRobot mode and stats, [resize with pad to a
    `resize_with_pad` square (bilinear, aspect kept; `center` padding or top/left; `clamp` to [0, 1])], [`signed`:
    x * 2 - 1]. `export(..., preprocess_in_graph=True)` puts exactly these steps into the graphs
    (common/preprocess.py). `fuse`: into the graph that takes the image (one camera per graph input); False:
    one small `frames_<H>x<W>` graph per frame size whose output feeds the image input (VLAs: one vision graph
    serves cameras of different sizes)."""

    normalize: bool = True
    resize_with_pad: int | None = None
    center: bool = True
    clamp: bool = True
    signed: bool = False
    fuse: bool = True


@dataclass
class GraphPlan:
    """One graph to export. `inputs`/`outputs` give names and shapes ('batch' marks the dynamic axis)."""

    name: str
    module: nn.Module
    inputs: list[IOSpec]
    outputs: list[IOSpec]
    tolerance: dict[str, dict[str, float]]     # output -> {"atol", "min_cosine"} at fp32
    sample_inputs: Callable[[np.random.Generator, int], dict[str, np.ndarray]]
    # optional: (example inputs) -> the module handed to the ONNX exporter instead of `module`, which stays the
    # eager reference for validation (e.g. pi0's RTC "exact" graph: a make_fx trace of a torch.func.vjp)
    export_module: Callable[[dict[str, np.ndarray]], nn.Module] | None = None


@dataclass(frozen=True)
class Call:
    """One predict_action_chunk(obs, **kwargs) of an end-to-end check, on a runtime loaded with `overrides`
    (each distinct set of overrides is one runtime instance, reused in order: histories carry over)."""

    obs: Mapping[str, Any]
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    overrides: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChunkCheck:
    """The end-to-end check of a policy with a host loop (exporters/chunk_check.py runs it): the bundle's
    runtime on the engine vs the same runtime on our PyTorch modules, over `calls(bundle, rng) -> [Call]`.

    `graphs`/`runtime_kind`: the reference modules and the runtime that runs them when they differ from the
    exported ones (a fused Diffusion bundle is checked against the stepped loop). `loop_graphs`: the exported
    graphs the host loop calls once per sampler step, whose error compounds over the steps (a chunk that fails
    with every graph passing is tightened there first: exporters/precision_fallback.py); () = every graph."""

    calls: Callable[[Any, np.random.Generator], list[Call]]
    seed: int
    graphs: list[GraphPlan] | None = None
    runtime_kind: str | None = None
    loop_graphs: tuple[str, ...] = ()


@dataclass
class ExportPlan:
    """Everything the bundle needs besides the graph files."""

    policy_type: str
    policy_config: dict               # the settings the runtime and `info` need (chunk size, dims, …)
    graphs: list[GraphPlan]
    observations: dict[str, dict]     # feature key -> {"kind", "shape", "graph_input"}
    action: dict                      # {"key": "action", "shape": [A]}
    normalization: dict[str, str]     # feature key -> mode (stats go to stats.safetensors)
    stats: dict[str, dict[str, np.ndarray]]
    runtime: dict                     # sampler / queue settings, read by runtime/
    legacy_stats: bool = False
    noise_shape: list | None = None
    extra: dict = field(default_factory=dict)
    # the check after the per-graph validation, for policies with a host loop (Diffusion's sampler, the pi
    # family's Euler steps and RTC, VQ-BeT's code draw): a sampled chunk, engine vs PyTorch, shared draws
    end_to_end: ChunkCheck | None = None
    # files beside the graphs, written into the bundle's common set: relative name -> writer(path)
    # (e.g. pi0's language embedding table, gathered on the host)
    extra_files: dict[str, Callable] = field(default_factory=dict)
    # the host's camera-frame arithmetic (what preprocess_in_graph moves into the graphs)
    frame_steps: FrameSteps = field(default_factory=FrameSteps)
    # the manifest's `preprocess` section, set by common/preprocess.in_graph (None: host preprocessing)
    preprocess: dict | None = None
