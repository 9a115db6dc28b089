"""lerobot-edge selftest BUNDLE [--backend B] [--iterations N] [--json F]"""

from __future__ import annotations

import json

from .options import add_engine_options, engine_options


def add_parser(sub) -> None:
    p = sub.add_parser("selftest", help="check a bundle on this device against its stored reference outputs")
    p.add_argument("bundle")
    p.add_argument("--backend", help="onnxruntime | openvino | tensorrt (default: the bundle's target's)")
    add_engine_options(p)
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--json", help="write the report")
    p.add_argument("--quiet", "-q", action="store_true")
    p.set_defaults(func=run)


def run(args, progress) -> int:
    from ..selftest import selftest

    report = selftest(args.bundle, args.backend, backend_options=engine_options(args),
                      iterations=args.iterations, progress=progress)
    progress.close()
    print("\n".join(report["lines"]))
    print(f"selftest passed with {report['backend']} ({report['precision']})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0
