#!/usr/bin/env python3
"""Produce LeRobot 0.4.4 reference checkpoints and reference actions for ACT.

Runs ONLY inside the LeRobot reference venv (``make parity-env`` builds ``.venv-lerobot``); the
lerobot_edge package is never imported here. For every case it writes::

    OUT/<case>/checkpoint/     config.json, model.safetensors,
                               policy_preprocessor.json
                               + policy_preprocessor_step_3_normalizer_processor.safetensors,
                               policy_postprocessor.json
                               + policy_postprocessor_step_0_unnormalizer_processor.safetensors
    OUT/<case>/reference.npz   inputs and LeRobot's outputs (layout below)
    OUT/<case>/meta.json       case config, versions, seeds, sha256 of weights / files / this script and the
                               modules it imports, checks

and finally ``OUT/DONE`` once every requested case succeeded.

reference.npz layout (B = batch size, A = action dim, T = chunk_size):
    n_steps                     int64 scalar
    obs.<i>.<feature key>       float32, batched exactly as fed to the pre-processor, i in [0, n_steps)
                                images (B, 3, H, W) in [0, 1]; states (B, D) in robot units
    pre.0.<feature key>         float32, output of LeRobot's pre-processor for step 0 (normalized)
    chunk                       float32 (B, T, A) robot units: post(policy.predict_action_chunk(pre(obs.0)))
    chunk_normalized            float32 (B, T, A) policy.predict_action_chunk(pre(obs.0)) (before post)
    actions                     float32 (n_steps, B, A) robot units: after policy.reset(),
                                actions[i] = post(policy.select_action(pre(obs.i)))
    actions_normalized          float32 (n_steps, B, A) the same before post

The checkpoint is written, then the policy is reloaded with ``ACTPolicy.from_pretrained(dir)`` and the
processors with ``make_pre_post_processors(cfg, pretrained_path=dir)`` (as lerobot-eval / lerobot-record do)
before anything is computed, so the reference is what the files on disk produce. The cases live in
reference_act_cases.py; the redraw, stats, observations, save / reload and sensitivity check are shared with the
other reference scripts (reference_common.py).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
from reference_act_cases import CASES, DEFAULT_CASES, KEEP_AS_COMPUTED, QK_GAIN, no_influence_in_eval
from reference_common import (derived_seed, full_stats, generator, observations, policy_features, redraw, reload,
                              save_checkpoint, sensitivity_check, sha256_file, snapshot, sources_sha256, write_done,
                              write_json, write_reference)

SCRIPT_PATH = Path(__file__).resolve()


def build_config(case: dict):
    from lerobot.configs.types import NormalizationMode
    from lerobot.policies.act.configuration_act import ACTConfig

    kwargs = dict(case["config"])
    if "normalization_mapping" in kwargs:
        kwargs["normalization_mapping"] = {
            k: NormalizationMode(v) for k, v in kwargs["normalization_mapping"].items()
        }
    input_features, output_features = policy_features(case["inputs"], case["action_dim"])
    return ACTConfig(
        input_features=input_features,
        output_features=output_features,
        pretrained_backbone_weights=None,  # the ImageNet download is unreachable; weights are redrawn anyway
        device="cpu",
        **kwargs,
    )


def build_and_save(case: dict, ckpt: Path):
    """A redrawn ACTPolicy and its processors saved to ckpt; returns (cfg, stats, saved state dict, kept)."""
    from lerobot.policies.act.modeling_act import ACTPolicy
    from lerobot.policies.factory import make_pre_post_processors

    seed = case["seed"]
    torch.manual_seed(seed)  # nothing should draw from the global RNG in eval, but be safe
    cfg = build_config(case)
    policy = ACTPolicy(cfg)
    kept = redraw(policy, generator(seed, "weights"), qk_gain=QK_GAIN, keep=KEEP_AS_COMPUTED, strict=True)
    expected = snapshot(policy)
    stats = full_stats(case["inputs"], case["action_dim"], generator(seed, "stats"))
    pre, post = make_pre_post_processors(cfg, dataset_stats=stats)
    save_checkpoint(ckpt, policy, pre, post, "act" if case["config_type_field"] else None)
    return cfg, stats, expected, kept


def lerobot_outputs(policy, pre, post, case: dict, obs_steps: list, extra: dict) -> tuple[dict, torch.Tensor, dict]:
    """reference.npz's arrays (module docstring), the normalized step-0 chunk (B, T, A) and timings."""
    arrays: dict[str, np.ndarray] = {"n_steps": np.array(case["n_steps"], dtype=np.int64)}
    for i, obs in enumerate(obs_steps):
        for k, v in obs.items():
            arrays[f"obs.{i}.{k}"] = v.numpy().copy()
    t1 = time.perf_counter()
    with torch.no_grad():
        policy.eval()
        batch0 = pre({**{k: v.clone() for k, v in obs_steps[0].items()}, **extra})
        for k in obs_steps[0]:
            arrays[f"pre.0.{k}"] = batch0[k].detach().numpy().astype(np.float32).copy()
        chunk_norm = policy.predict_action_chunk(batch0)
        chunk = post(chunk_norm.clone())
        t_chunk = time.perf_counter() - t1
        policy.reset()
        actions, actions_norm = [], []
        for obs in obs_steps:
            a_norm = policy.select_action(pre({**{k: v.clone() for k, v in obs.items()}, **extra}))
            actions_norm.append(a_norm.clone())
            actions.append(post(a_norm.clone()))
        t_loop = time.perf_counter() - t1 - t_chunk
    arrays["chunk"] = chunk.numpy().astype(np.float32)
    arrays["chunk_normalized"] = chunk_norm.numpy().astype(np.float32)
    arrays["actions"] = torch.stack(actions).numpy().astype(np.float32)
    arrays["actions_normalized"] = torch.stack(actions_norm).numpy().astype(np.float32)
    b_, t_, a_ = arrays["chunk"].shape
    assert (b_, t_, a_) == (case["batch"], policy.config.chunk_size, case["action_dim"]), arrays["chunk"].shape
    assert arrays["actions"].shape == (case["n_steps"], b_, a_), arrays["actions"].shape
    return arrays, chunk_norm, {"chunk": round(t_chunk, 3), "select_action_loop": round(t_loop, 3)}


def check_action_schedule(policy, pre, case: dict, obs_steps: list, extra: dict, arrays: dict) -> dict:
    """LeRobot's own queue / temporal ensembling against its chunks (self-consistency of the reference)."""
    cfg, checks = policy.config, {}
    if cfg.temporal_ensemble_coeff is None:
        n = min(cfg.n_action_steps, case["n_steps"])
        # first n_action_steps actions come from the step-0 chunk, later observations ignored until refill
        diff = np.abs(arrays["actions"][:n] - arrays["chunk"][:, :n].transpose(1, 0, 2)).max()
        checks["queue_first_refill_matches_chunk_maxabs"] = float(diff)
        assert diff <= 1e-5, diff
        checks["chunk_refill_steps"] = list(range(0, case["n_steps"], cfg.n_action_steps))
        return checks
    diff = np.abs(arrays["actions"][0] - arrays["chunk"][:, 0]).max()
    checks["ensemble_first_action_is_chunk_0_maxabs"] = float(diff)
    assert diff <= 1e-5, diff
    # Offline form of LeRobot's online ensembler, in normalized space: action_t is the average of
    # chunk_s[t - s] over s = max(0, t-T+1)..t, weighted exp(-coeff * j) with j = 0 for the OLDEST s.
    with torch.no_grad():
        chunks = [policy.predict_action_chunk(pre({**{k: v.clone() for k, v in o.items()}, **extra})).numpy()
                  for o in obs_steps]
    coeff, T = cfg.temporal_ensemble_coeff, cfg.chunk_size
    worst = 0.0
    for t in range(case["n_steps"]):
        srcs = list(range(max(0, t - T + 1), t + 1))
        w = np.exp(-coeff * np.arange(len(srcs)))
        want = sum(wj * chunks[s][:, t - s] for wj, s in zip(w, srcs)) / w.sum()
        worst = max(worst, float(np.abs(want - arrays["actions_normalized"][t]).max()))
    checks["ensemble_matches_offline_weighted_average_maxabs"] = worst
    assert worst <= 1e-5, worst
    return checks


def degeneracy_report(name: str, chunk_norm: torch.Tensor) -> dict:
    """chunk_norm: (B, T, A) in normalized units; raises if it is degenerate."""
    flat = chunk_norm.reshape(-1, chunk_norm.shape[-1])
    deg = {
        "std_all": float(chunk_norm.std()),
        "min_over_dims_of_std": float(flat.std(dim=0).min()),  # per action dim, over batch and time
        "std_across_action_dims": float(chunk_norm.std(dim=-1).mean()),
        "std_over_time": float(chunk_norm.std(dim=1).mean()),
        "abs_max": float(chunk_norm.abs().max()),
    }
    if chunk_norm.shape[0] > 1:
        deg["std_over_batch"] = float(chunk_norm.std(dim=0).mean())
    print(f"[{name}] chunk (normalized) stats: {json.dumps(deg)}", flush=True)
    # Not degenerate: varies across action dims (the brief's criterion), over the chunk, and with the obs.
    if not (deg["std_across_action_dims"] > 0.1 and deg["std_all"] > 0.1 and deg["std_over_time"] > 0.01):
        raise RuntimeError(f"{name}: degenerate chunk output {deg}")
    if "std_over_batch" in deg and deg["std_over_batch"] <= 0.01:
        raise RuntimeError(f"{name}: chunk does not depend on the observation {deg}")
    return deg


def sensitivity(name: str, case: dict, policy, pre, stats, extra: dict) -> dict:
    """Every tensor moves the chunk (but those no_influence_in_eval names), on small probe observations."""
    # at most 2 x 96 x 128 probe images: weight influence does not depend on resolution
    inputs = [(k, t, (s[0], min(s[1], 96), min(s[2], 128)) if t == "VISUAL" else s) for k, t, s in case["inputs"]]
    probe = observations(inputs, 2, 1, stats, generator(case["seed"], "probe"))[0]
    if extra:
        probe["observation.state"] = torch.zeros((2, 0))
    pb = pre(probe)
    s = sensitivity_check(policy, lambda: policy.predict_action_chunk(pb), generator(case["seed"], "sensitivity"),
                          lambda n: no_influence_in_eval(policy.config, n))
    print(f"[{name}] sensitivity: {s['n_tensors']} tensors, min relative change {s['min_relative_change']:.2e}, "
          f"unexpected no-influence: {s['unexpected_no_influence']}, weak: {s['weak_influence_lt_1e-3']}", flush=True)
    if s["unexpected_no_influence"]:
        raise RuntimeError(f"{name}: tensors without influence: {s['unexpected_no_influence']}")
    return s


def case_meta(name: str, case: dict, cfg, case_dir: Path, arrays: dict, kept: list, expected: dict,
              checks: dict) -> dict:
    """meta.json without timing_s (module docstring)."""
    import torchvision

    ckpt, seed = case_dir / "checkpoint", case["seed"]
    return {
        "case": name,
        "case_config": case,
        "seed": seed,
        "derived_seeds": {p: derived_seed(seed, p) for p in ("weights", "stats", "observations")},
        "lerobot_version": __import__("lerobot").__version__,
        "torch_version": torch.__version__,
        "torchvision_version": torchvision.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "weights_sha256": sha256_file(ckpt / "model.safetensors"),
        "checkpoint_files_sha256": {f: sha256_file(ckpt / f) for f in sorted(p.name for p in ckpt.iterdir())},
        "reference_npz_sha256": sha256_file(case_dir / "reference.npz"),
        "script_sha256": sha256_file(SCRIPT_PATH),
        "sources_sha256": sources_sha256(),
        "config_has_type_field": "type" in json.loads((ckpt / "config.json").read_text()),
        "kept_as_computed": kept,
        "no_influence_in_eval": sorted(k for k in expected if no_influence_in_eval(cfg, k)),
        "npz_keys": {k: [list(v.shape), str(v.dtype)] for k, v in arrays.items()},
        "checks": checks,
    }


def run_case(name: str, out_dir: Path, sensitivity_on: bool) -> dict:
    from lerobot.policies.act.modeling_act import ACTPolicy

    case, t0 = CASES[name], time.perf_counter()
    case_dir = out_dir / name
    if case_dir.exists():
        shutil.rmtree(case_dir)
    ckpt = case_dir / "checkpoint"
    ckpt.mkdir(parents=True)
    cfg, stats, expected, kept = build_and_save(case, ckpt)
    t_build = time.perf_counter() - t0

    # ---- everything below uses only what is on disk ----
    policy, pre, post = reload(ACTPolicy, ckpt, expected)
    obs_steps = observations(case["inputs"], case["batch"], case["n_steps"], stats,
                             generator(case["seed"], "observations"))
    extra = {}
    if "lerobot_workaround" in case:
        extra = {"observation.state": torch.zeros((case["batch"], 0), dtype=torch.float32)}
    arrays, chunk_norm, timing = lerobot_outputs(policy, pre, post, case, obs_steps, extra)
    checks = check_action_schedule(policy, pre, case, obs_steps, extra, arrays)
    checks["degeneracy"] = degeneracy_report(name, chunk_norm)
    t2 = time.perf_counter()
    if sensitivity_on:
        checks["sensitivity"] = sensitivity(name, case, policy, pre, stats, extra)
    t_sens = time.perf_counter() - t2

    write_reference(case_dir / "reference.npz", arrays)
    meta = case_meta(name, case, cfg, case_dir, arrays, kept, expected, checks)
    meta["timing_s"] = {"build_and_save": round(t_build, 3), **timing, "sensitivity": round(t_sens, 3),
                        "total": round(time.perf_counter() - t0, 3)}
    write_json(case_dir / "meta.json", meta)
    print(f"[{name}] done in {meta['timing_s']['total']:.1f}s  {json.dumps(meta['timing_s'])}", flush=True)
    return meta


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path, help="output directory")
    ap.add_argument(
        "--cases", default=",".join(DEFAULT_CASES), help=f"comma list (default: all: {','.join(DEFAULT_CASES)})"
    )
    ap.add_argument(
        "--sensitivity",
        choices=("off", "small", "all"),
        default="all",
        help="perturb every tensor and check the chunk moves (default all; 'small': all cases but aloha)",
    )
    args = ap.parse_args(argv)

    import lerobot

    if lerobot.__version__ != "0.4.4":
        print(f"warning: expected lerobot 0.4.4, got {lerobot.__version__}", file=sys.stderr)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        ap.error(f"unknown cases {unknown}; known: {list(CASES)}")

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "DONE").unlink(missing_ok=True)
    t0 = time.perf_counter()
    summary = {}
    for c in cases:
        sens = args.sensitivity == "all" or (args.sensitivity == "small" and c != "aloha")
        meta = run_case(c, args.out, sens)
        summary[c] = {"weights_sha256": meta["weights_sha256"], "timing_s": meta["timing_s"]}
    total = time.perf_counter() - t0
    write_done(args.out, {"cases": cases, "lerobot_version": lerobot.__version__, "torch_version": torch.__version__,
                          "script_sha256": sha256_file(SCRIPT_PATH), "sources_sha256": sources_sha256(),
                          "total_s": round(total, 3), "summary": summary})
    print(f"all {len(cases)} cases done in {total:.1f}s -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
