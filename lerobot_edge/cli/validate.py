"""lerobot-edge validate BUNDLE --against SOURCE | --dataset PATH_OR_REPO [--episodes 0,3] [--against SOURCE]"""

from __future__ import annotations

import json


def add_parser(sub) -> None:
    p = sub.add_parser("validate", help="re-run a bundle's validation against a checkpoint, or replay a dataset")
    p.add_argument("bundle")
    p.add_argument("--against", help="checkpoint directory or Hub repo id (the PyTorch reference)")
    p.add_argument("--dataset", help="LeRobot v3 dataset (directory or Hub id) whose observations to replay")
    p.add_argument("--episodes", help="comma-separated episode indices (default: all)")
    p.add_argument("--max-frames", type=int, help="frames per episode at most")
    p.add_argument("--plot", help="PNG of predicted vs recorded actions per joint (first episode)")
    p.add_argument("--json", help="write the report")
    p.add_argument("--backend", help="backend to validate with (default: the bundle's target's)")
    p.add_argument("--policy-type")
    p.add_argument("--revision")
    p.set_defaults(func=run)


def run(args, progress) -> int:
    if args.dataset:
        from ..replay import replay_dataset

        episodes = [int(e) for e in args.episodes.split(",")] if args.episodes else None
        report = replay_dataset(args.bundle, args.dataset, episodes=episodes, against=args.against,
                                backend=args.backend, revision=args.revision, max_frames=args.max_frames,
                                plot=args.plot, progress=progress)
        progress.close()
        for r in report["episodes"]:
            ref = f", vs PyTorch max {r['vs_reference_max']:.2e}" if "vs_reference_max" in r else ""
            rec = f"vs recorded mean {r['vs_recorded_mean']:.3f}" if "vs_recorded_mean" in r else ""
            print(f"episode {r['episode']}: {r['frames']} frames, {rec}{ref} (normalized units)")
    else:
        if not args.against:
            raise ValueError("validate needs --against SOURCE (a checkpoint) or --dataset PATH")
        from ..api import validate_bundle

        report = validate_bundle(args.bundle, args.against, backend=args.backend, policy_type=args.policy_type,
                                 revision=args.revision, progress=progress)
        progress.close()
        print("\n".join(report["lines"]))
        if not report["same_weights"]:
            print("note: the checkpoint's weights differ from the bundle's source (sha256)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0
