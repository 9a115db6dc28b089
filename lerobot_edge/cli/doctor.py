"""lerobot-edge doctor [--json]"""

from __future__ import annotations

import json


def add_parser(sub) -> None:
    p = sub.add_parser("doctor", help="what this machine can run, and what to install for the rest")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args, steps) -> int:
    from ..doctor import diagnose, format_report

    report = diagnose()
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0
