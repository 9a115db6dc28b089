"""Policy families: each `policies/<name>/plan.py` turns a LeRobot checkpoint into an `ExportPlan`."""

from __future__ import annotations

import importlib

from ..errors import CheckpointError

# LeRobot policy type -> module whose `build_plan(checkpoint)` returns an ExportPlan
PLANS = {
    "act": "lerobot_edge.policies.act.plan",
    "diffusion": "lerobot_edge.policies.diffusion.plan",
    "gaussian_actor": "lerobot_edge.policies.sac.plan",   # SAC's actor as LeRobot 0.6 names it
    "pi0": "lerobot_edge.policies.pi0.plan",
    "pi05": "lerobot_edge.policies.pi05.plan",
    "sac": "lerobot_edge.policies.sac.plan",
    "smolvla": "lerobot_edge.policies.smolvla.plan",
    "tdmpc": "lerobot_edge.policies.tdmpc.plan",
    "vqbet": "lerobot_edge.policies.vqbet.plan",
}


def available_policies() -> list[str]:
    """LeRobot policy types lerobot-edge can export."""
    return sorted(PLANS)


def build_plan(checkpoint, **options):
    """The ExportPlan of a checkpoint; an unknown policy type is a CheckpointError listing the known ones.

    `options`: export options some policies take (e.g. fuse_loop=True: Diffusion). Falsy ones are dropped; a
    plan module lists the ones it accepts in EXPORT_OPTIONS, any other is a ValueError naming it."""
    ptype = checkpoint.policy_type
    if ptype not in PLANS:
        raise CheckpointError(f"policy type {ptype!r} is not supported; supported: {', '.join(available_policies())}")
    module = importlib.import_module(PLANS[ptype])
    given = {k: v for k, v in options.items() if v}
    refused = sorted(set(given) - set(getattr(module, "EXPORT_OPTIONS", ())))
    if refused:
        raise ValueError(f"export options {refused} are not supported for {ptype} checkpoints")
    return module.build_plan(checkpoint, **given)
