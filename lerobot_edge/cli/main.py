"""`lerobot-edge` entry point: dispatch, and typed errors -> one line on stderr + exit code.

Exit codes: 0 ok, 1 validation failed / non-finite actions, 2 bad input, 3 missing backend/GPU/Hub.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from . import bench, build, doctor, export, info, push, run, selftest, validate
from .progress import Steps

COMMANDS = [export, info, validate, selftest, build, bench, doctor, push, run]


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(prog="lerobot-edge", description="LeRobot policies on robot computers: "
                                     "export to ONNX / OpenVINO / TensorRT bundles and run them without torch.")
    parser.add_argument("--version", action="version", version=f"lerobot-edge {__version__}")
    parser.add_argument("--verbose", "-v", action="store_true", help="log details; show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    for cmd in COMMANDS:
        cmd.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from ..errors import LeRobotEdgeError

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    if not args.verbose:
        _quiet_exporters()
    steps = Steps(quiet=getattr(args, "quiet", False))
    try:
        return args.func(args, steps)
    except LeRobotEdgeError as e:
        steps.done()
        if args.verbose:
            raise
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return e.exit_code
    except (ValueError, FileNotFoundError) as e:
        steps.done()
        if args.verbose:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        steps.done()
        print("interrupted", file=sys.stderr)
        return 130


def _quiet_exporters() -> None:
    """torch.onnx and onnxscript log per-op chatter that hides our progress lines."""
    os.environ.setdefault("TORCH_LOGS", "-all")
    for name in ("torch.onnx", "onnxscript", "torch._dynamo", "torch.export", "torch._export"):
        logging.getLogger(name).setLevel(logging.ERROR)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
