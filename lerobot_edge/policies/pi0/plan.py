"""Pi0's graph plan: the pi family's graphs (common/paligemma/plan.py) with pi0's core and its denoise step,
which takes the normalized state as a graph input (the suffix's state token)."""

from __future__ import annotations

from ...checkpoint import Checkpoint
from ..common.paligemma.config import PiConfig
from ..common.paligemma.model import load_core
from ..common.paligemma.plan import pi_plan
from ..plan import ExportPlan
from .model import PI0Core, PI0DenoiseGraph


def build_plan(ckpt: Checkpoint, rtc_exact: bool = False) -> ExportPlan:
    cfg = PiConfig.from_checkpoint(ckpt)
    core = load_core(ckpt, cfg, PI0Core)
    return pi_plan(ckpt, cfg, core, "pi0", PI0DenoiseGraph(core, cfg), True, {"append_newline": True}, rtc_exact)
