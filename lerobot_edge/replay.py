"""Replay a LeRobot dataset's recorded observations through a bundle (and, with `against`, through the same
policy in eager PyTorch): per-episode action error against the reference (a gate at fp32) and against the
recorded actions (a sanity check of the policy on the user's own data, never a gate)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from .dataset import LeRobotDataset
from .errors import ValidationError
from .kernels.normalize import action_scale
from .progress import Progress, ProgressLike, as_progress
from .runtime import load_policy

REFERENCE_ATOL = 1e-4  # normalized units, fp32 bundles


def replay_dataset(bundle: str | Path, dataset: str | Path, *, episodes: list[int] | None = None,
                   against: str | Path | None = None, backend: str | None = None, revision: str | None = None,
                   max_frames: int | None = None, plot: str | Path | None = None,
                   progress: ProgressLike = None) -> dict:
    progress = as_progress(progress)
    policy = load_policy(bundle, backend)
    reference = None
    if against is not None:
        from .exporters.torch_session import load_torch_policy  # torch only when a reference is asked for
        reference = load_torch_policy(str(bundle), str(against))
    ds = LeRobotDataset.open(dataset, revision)
    mode = policy.manifest["normalization"].get(policy.action_key, "IDENTITY")
    scale = np.asarray(action_scale(mode, policy.bundle.stats().get(policy.action_key, {})), np.float32)
    results, traces = [], None
    for ep_index in episodes if episodes is not None else sorted(ds.episodes):
        rep, trace = _episode(ds, ds.episode(ep_index), policy, reference, scale, max_frames, progress)
        results.append(rep)
        traces = traces or trace
    fp32 = policy.manifest["precision"] == "fp32"
    passed = None if reference is None else all(r["vs_reference_max"] <= REFERENCE_ATOL for r in results)
    report = {"bundle": str(bundle), "dataset": str(dataset), "backend": policy.backend, "episodes": results,
              "reference": str(against) if against else None, "passed": passed if fp32 else None}
    if plot and traces:
        _plot(traces, Path(plot), ep=results[0]["episode"])
    if fp32 and passed is False:
        raise ValidationError("replay: the bundle's actions differ from PyTorch's on recorded observations",
                              report=report)
    return report


def _episode(ds, ep, policy, reference, scale, max_frames, progress: Progress):
    policy.reset()
    if reference is not None:
        reference.reset()
    pred, rec, ref = [], [], []
    n = len(ep.rows["timestamp"]) if max_frames is None else min(len(ep.rows["timestamp"]), max_frames)
    for obs, action in progress.track(itertools.islice(ds.frames(ep), n), f"replaying episode {ep.index}", n):
        pred.append(policy.select_action(obs))
        if action is not None:
            rec.append(action)
        if reference is not None:
            ref.append(reference.select_action(obs))
    pred = np.stack(pred)
    rep = {"episode": ep.index, "frames": len(pred)}
    if rec:
        err = np.abs(pred - np.stack(rec)[: len(pred)]) / scale
        rep.update(vs_recorded_mean=float(err.mean()), vs_recorded_per_joint=err.mean(0).round(4).tolist())
    if ref:
        rep["vs_reference_max"] = float((np.abs(pred - np.stack(ref)) / scale).max())
    return rep, (pred, np.stack(rec) if rec else None)


def _plot(traces, path: Path, ep: int) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pred, rec = traces
    joints = pred.shape[-1]
    cols = min(joints, 4)
    rows = -(-joints // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.2 * rows), squeeze=False)
    for j in range(joints):
        ax = axes[j // cols][j % cols]
        ax.plot(pred[:, j], label="bundle")
        if rec is not None:
            ax.plot(rec[: len(pred), j], label="recorded", alpha=0.7)
        ax.set_title(f"joint {j}", fontsize=8)
    for k in range(joints, rows * cols):
        axes[k // cols][k % cols].axis("off")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"episode {ep}: predicted vs recorded actions", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
