"""lerobot-edge validate BUNDLE --against SOURCE"""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("validate", help="re-run a bundle's validation against a checkpoint")
    p.add_argument("bundle")
    p.add_argument("--against", required=True, help="checkpoint directory or Hub repo id")
    p.add_argument("--backend", help="backend to validate with (default: the bundle's target's)")
    p.add_argument("--policy-type")
    p.add_argument("--revision")
    p.set_defaults(func=run)


def run(args, steps) -> int:
    from ..api import validate_bundle

    report = validate_bundle(args.bundle, args.against, backend=args.backend, policy_type=args.policy_type,
                             revision=args.revision, progress=steps)
    steps.done()
    print("\n".join(report["lines"]))
    if not report["same_weights"]:
        print("note: the checkpoint's weights differ from the bundle's source (sha256)")
    return 0
