"""Policy families: each `policies/<name>/plan.py` turns a LeRobot checkpoint into an `ExportPlan`."""

from __future__ import annotations

import importlib

from ..errors import CheckpointError

# LeRobot policy type -> module whose `build_plan(checkpoint)` returns an ExportPlan
PLANS = {
    "act": "lerobot_edge.policies.act.plan",
    "diffusion": "lerobot_edge.policies.diffusion.plan",
    "pi0": "lerobot_edge.policies.pi0.plan",
}


def available_policies() -> list[str]:
    """LeRobot policy types lerobot-edge can export."""
    return sorted(PLANS)


def build_plan(checkpoint):
    """The ExportPlan of a checkpoint; an unknown policy type is a CheckpointError listing the known ones."""
    ptype = checkpoint.policy_type
    if ptype not in PLANS:
        raise CheckpointError(f"policy type {ptype!r} is not supported; supported: {', '.join(available_policies())}")
    return importlib.import_module(PLANS[ptype]).build_plan(checkpoint)
