"""Pi0.5's graph plan: pi0's three graphs (vision / prefix / denoise) with the adaRMS expert and no state input
to the graphs; the runtime writes the discretized normalized state into the prompt (`state_in_prompt`)."""

from __future__ import annotations

from ...checkpoint import Checkpoint
from ..plan import ExportPlan
from ..pi0.plan import flow_plan, load_core
from .model import PI05Config, PI05Core, DenoiseGraph05

EXPORT_OPTIONS = ("rtc_exact",)


def build_plan(ckpt: Checkpoint, rtc_exact: bool = False) -> ExportPlan:
    cfg = PI05Config.from_checkpoint(ckpt)
    core = load_core(ckpt, cfg, PI05Core)
    return flow_plan(ckpt, cfg, core, "pi05", DenoiseGraph05(core, cfg), False, {"state_in_prompt": True},
                     rtc_exact)
