"""lerobot-edge info BUNDLE [--json]"""

from __future__ import annotations

import json


def add_parser(sub) -> None:
    p = sub.add_parser("info", help="print a bundle's summary (verifies its checksums)")
    p.add_argument("bundle")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--no-verify", action="store_true", help="skip checksum verification")
    p.set_defaults(func=run)


def run(args, steps) -> int:
    from ..inspect import bundle_info, format_info

    info = bundle_info(args.bundle, verify=not args.no_verify)
    print(json.dumps(info, indent=2) if args.json else format_info(info))
    return 0
