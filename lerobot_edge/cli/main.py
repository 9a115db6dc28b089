"""`lerobot-edge` entry point: dispatch, and typed errors -> one line on stderr + exit code.

Exit codes: 0 ok, 1 validation failed / non-finite actions, 2 bad input, 3 missing backend/GPU/Hub.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from . import bench, build, doctor, export, fleet_bench, info, push, run, selftest, serve, triton, validate

COMMANDS = [export, info, validate, selftest, build, bench, doctor, push, run, serve, triton, fleet_bench]


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
    from .progress import ConsoleLog, make_progress  # rich: imported by the CLI only

    args = build_parser().parse_args(argv)
    progress = make_progress(quiet=getattr(args, "quiet", False))
    level = logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, handlers=[ConsoleLog(progress.console)])  # log lines above the live rows
    if not args.verbose:
        _quiet_exporters()
    try:
        code = args.func(args, progress)
        progress.close()
        return code
    except LeRobotEdgeError as e:
        progress.close(failed=True)
        if args.verbose:
            raise
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return e.exit_code
    except (ValueError, FileNotFoundError) as e:
        progress.close(failed=True)
        if args.verbose:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        progress.close(failed=True)
        print("interrupted", file=sys.stderr)
        return 130
    except BaseException:
        progress.close(failed=True)
        raise


def _quiet_exporters() -> None:
    """torch.onnx and onnxscript log per-op chatter that hides our progress lines."""
    os.environ.setdefault("TORCH_LOGS", "-all")
    for name in ("torch.onnx", "onnxscript", "torch._dynamo", "torch.export", "torch._export"):
        logging.getLogger(name).setLevel(logging.ERROR)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
