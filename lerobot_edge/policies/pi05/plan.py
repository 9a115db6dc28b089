"""Pi0.5's graph plan: the pi family's graphs (common/paligemma/plan.py) with the adaRMS expert and no state
input to the graphs; the runtime writes the discretized normalized state into the prompt (`state_in_prompt`)."""

from __future__ import annotations

from ...checkpoint import Checkpoint
from ..common.paligemma.model import load_core
from ..common.paligemma.plan import pi_plan
from ..plan import ExportPlan
from .model import DenoiseGraph05, PI05Config, PI05Core


def build_plan(ckpt: Checkpoint, rtc_exact: bool = False) -> ExportPlan:
    cfg = PI05Config.from_checkpoint(ckpt)
    core = load_core(ckpt, cfg, PI05Core)
    return pi_plan(ckpt, cfg, core, "pi05", DenoiseGraph05(core, cfg), False, {"state_in_prompt": True},
                   rtc_exact)
