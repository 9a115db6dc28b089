"""lerobot-edge run BUNDLE --robot sim --fps 30 --duration 20 --mode async [--backend B] [--report run.json]"""

from __future__ import annotations

import signal
import sys


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="drive a robot at a fixed rate with a bundle (sync or async inference)")
    p.add_argument("bundle")
    p.add_argument("--robot", default="sim", help="sim (a simulated robot at the policy's shapes)")
    p.add_argument("--fps", type=float, default=30)
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--mode", choices=["sync", "async"], default="async")
    p.add_argument("--backend")
    p.add_argument("--camera-latency", type=float, default=0.0, help="simulated camera latency (s)")
    p.add_argument("--clamp", action="store_true", help="clamp actions to the dataset's min/max")
    p.add_argument("--report", help="write the JSON report")
    p.set_defaults(func=run)


def _status(s: dict) -> None:
    inf = s["inference"] or {}
    sys.stderr.write(f"\r{s['achieved_hz']:6.1f} Hz  inference p50 {inf.get('p50_ms', 0):6.1f} ms "
                     f"p95 {inf.get('p95_ms', 0):6.1f} ms  queue {s['queue_depth_mean'] or 0:4.1f}  "
                     f"misses {s['misses']}  overruns {s['overruns']}   ")
    sys.stderr.flush()


def run(args, steps) -> int:
    from ..runtime.control.run import run_policy

    stops: list = []
    signal.signal(signal.SIGINT, lambda *_: [f() for f in stops])  # Ctrl-C: stop cleanly, keep the report
    r = run_policy(args.bundle, args.robot, fps=args.fps, duration=args.duration, mode=args.mode,
                   backend=args.backend, report=args.report, camera_latency=args.camera_latency, clamp=args.clamp,
                   status=_status, stop_event=stops)
    sys.stderr.write("\n")
    inf = r["inference"] or {}
    print(f"{r['policy']} on {r['backend']}, {r['mode']} at {r['fps']:g} Hz: {r['ticks']} ticks, achieved "
          f"{r['achieved_hz']:.1f} Hz, misses {r['misses']}, overruns {r['overruns']}, chunks {r['chunks']}, "
          f"inference p50 {inf.get('p50_ms', 0):.1f} ms p95 {inf.get('p95_ms', 0):.1f} ms")
    return 0
