"""lerobot-edge push BUNDLE REPO_ID [--private] [--revision]"""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("push", help="upload a bundle to the Hugging Face Hub with a generated model card")
    p.add_argument("bundle")
    p.add_argument("repo_id")
    p.add_argument("--private", action="store_true")
    p.add_argument("--revision", help="branch to commit to")
    p.set_defaults(func=run)


def run(args, steps) -> int:
    from ..hub import push_bundle

    print(push_bundle(args.bundle, args.repo_id, private=args.private, revision=args.revision))
    return 0
