"""Policy families: each `policies/<name>/plan.py` turns a LeRobot checkpoint into an `ExportPlan`; which
module serves which policy type, and which export options it takes, is `registry.POLICIES`."""

from __future__ import annotations

import importlib

from ..registry import POLICIES, policy_spec


def available_policies() -> list[str]:
    """LeRobot policy types lerobot-edge can export."""
    return sorted(POLICIES)


def build_plan(checkpoint, **options):
    """The ExportPlan of a checkpoint; an unknown policy type is a CheckpointError listing the known ones.

    `options`: export options some policies take (e.g. fuse_loop=True: Diffusion). Falsy ones are dropped;
    one the policy's registry entry does not list is a ValueError naming it. `preprocess_in_graph` is applied
    here to any plan (common/preprocess.py), from the plan's `frame_steps`."""
    spec = policy_spec(checkpoint.policy_type)
    given = {k: v for k, v in options.items() if v}
    refused = sorted(set(given) - set(spec.export_options))
    if refused:
        raise ValueError(f"export options {refused} are not supported for {spec.type} checkpoints")
    in_graph = given.pop("preprocess_in_graph", False)
    plan = importlib.import_module(spec.plan).build_plan(checkpoint, **given)
    if in_graph:
        from .common.preprocess import in_graph as move_into_graphs

        plan = move_into_graphs(plan)
    return plan
