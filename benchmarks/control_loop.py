"""Control-loop figures on this machine: achieved rate, misses, skipped ticks, inference latency and
observation age per bundle x mode x fps, with the simulated robot. Not part of the test suite.

    python benchmarks/control_loop.py BUNDLE [BUNDLE ...] [--fps 30,50] [--modes sync,async] [--duration 10]
        [--camera-latency 0.0] [--out benchmarks/results/control_loop]

Writes OUT.json (every run's summary, config and machine) and OUT.md (one table).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

from lerobot_edge.runtime.control.runner import run_policy


def _row(bundle: str, r: dict) -> str:
    s, c = r["summary"], r["config"]
    lat, age = s["latency_ms"] or {}, s["obs_age_ms"] or {}
    return (f"| {Path(bundle).name} | {c['backend']} | {c['mode']} | {c['fps']:g} | {s['achieved_hz']:.2f} | "
            f"{s['ticks']} | {s['misses']} | {s['skipped_ticks']} | {s['overruns']} | "
            f"{lat.get('p50', float('nan')):.1f} / {lat.get('p95', float('nan')):.1f} / "
            f"{lat.get('max', float('nan')):.1f} | {age.get('p50', float('nan')):.1f} | "
            f"{(s['lateness_ms'] or {}).get('p95', float('nan')):.1f} |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("bundles", nargs="+")
    p.add_argument("--fps", default="30,50")
    p.add_argument("--modes", default="sync,async")
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--camera-latency", type=float, default=0.0)
    p.add_argument("--backend")
    p.add_argument("--out", default="benchmarks/results/control_loop")
    args = p.parse_args(argv)
    runs, rows = [], []
    for bundle in args.bundles:
        for mode in args.modes.split(","):
            for fps in (float(f) for f in args.fps.split(",")):
                r = run_policy(bundle, "sim", fps, args.duration, mode, args.backend,
                               robot_options={"camera_latency": args.camera_latency})
                runs.append({"bundle": bundle, "config": r["config"], "summary": r["summary"],
                             "duration_s": r["duration_s"]})
                rows.append(_row(bundle, r))
                print(rows[-1], file=sys.stderr)
    machine = {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
               "load_avg": os.getloadavg()}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"machine": machine, "runs": runs}, indent=1))
    head = ("| bundle | backend | mode | fps | achieved Hz | ticks | misses | skipped | overruns | "
            "latency p50/p95/max ms | obs age p50 ms | lateness p95 ms |\n|" + "---|" * 12)
    out.with_suffix(".md").write_text(f"Machine: {machine}\n\n{head}\n" + "\n".join(rows) + "\n")
    print(out.with_suffix(".md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
