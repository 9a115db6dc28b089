"""Soak figures on this machine: the async control loop with the simulated robot for minutes, and a long run of
select_action calls. Reports RSS over time (and its slope), inference latency and missed/skipped ticks per
minute, so growth and drift show; the bounded version runs in the suite (tests/test_soak.py). Not a test.

    python benchmarks/soak.py BUNDLE [--minutes 5] [--fps 50] [--mode async] [--calls 100000]
        [--camera-latency 0.0] [--max-records 100000] [--trace] [--out benchmarks/results/soak]

Writes OUT.json (samples per second, per-minute table, select_action figures, machine) and OUT.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

from lerobot_edge import load_policy
from lerobot_edge.runtime.control.clock import ControlLoop
from lerobot_edge.runtime.control.robots import SimRobot


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def loop_soak(bundle: str, minutes: float, fps: float, mode: str, camera_latency: float,
              max_records: int, trace: bool = False) -> dict:
    """One long control run; a sample per second (RSS, cumulative counters, with `trace` the Python heap
    traced by tracemalloc), then per-minute figures."""
    policy = load_policy(bundle)
    robot = SimRobot.from_policy(policy, seed=0, camera_latency=camera_latency, keep=1000)  # bounded record
    samples: list[dict] = []

    def sample(_line: str) -> None:
        c = loop.record.counts
        samples.append({"t": round(time.perf_counter() - t0, 3), "rss_mb": round(rss_mb(), 2),
                        "ticks": c["ticks"], "misses": c["misses"], "skipped": c["skipped_ticks"],
                        "inferences": c["inferences"],
                        **({"py_heap_mb": round(tracemalloc.get_traced_memory()[0] / 2**20, 3)} if trace else {})})

    loop = ControlLoop(policy, robot, fps=fps, mode=mode, status=sample, status_interval=1.0,
                       max_records=max_records)
    if trace:
        tracemalloc.start()
    t0 = time.perf_counter()
    report = loop.run(duration=minutes * 60)
    if trace:
        tracemalloc.stop()
    lat = [(r["obs_step"] / fps, r["latency"]) for r in report["inferences"]
           if r.get("latency") is not None and not r.get("error")]
    if mode == "sync":
        lat = [(t["t"], t["latency"]) for t in report["ticks"] if t.get("latency") is not None]
    return {"summary": report["summary"], "samples": samples, "per_minute": per_minute(samples, lat),
            "rss_slope_mb_per_min": rss_slope(samples), "leaked_threads": report["leaked_threads"]}


def per_minute(samples: list[dict], latencies: list[tuple[float, float]]) -> list[dict]:
    """Per minute: RSS at its end, misses and skipped ticks in it, inference latency p50/p95/max (ms)."""
    rows, prev = [], {"ticks": 0, "misses": 0, "skipped": 0}
    for m in range(1, int(samples[-1]["t"] // 60) + 2):
        inside = [s for s in samples if m * 60 - 60 < s["t"] <= m * 60]
        if not inside:
            continue
        end = inside[-1]
        lat = np.array([v for t, v in latencies if m * 60 - 60 < t <= m * 60]) * 1e3
        rows.append({"minute": m, "rss_mb": end["rss_mb"], "py_heap_mb": end.get("py_heap_mb"),
                     "ticks": end["ticks"] - prev["ticks"],
                     "misses": end["misses"] - prev["misses"], "skipped": end["skipped"] - prev["skipped"],
                     **({"lat_p50_ms": round(float(np.percentile(lat, 50)), 2),
                         "lat_p95_ms": round(float(np.percentile(lat, 95)), 2),
                         "lat_max_ms": round(float(lat.max()), 2)} if lat.size else {})})
        prev = end
    return rows


def rss_slope(samples: list[dict]) -> float:
    """Least-squares slope of RSS (MB per minute) after the first 30 s (warm-up)."""
    s = [x for x in samples if x["t"] > 30] or samples
    t, r = np.array([x["t"] for x in s]) / 60, np.array([x["rss_mb"] for x in s])
    return round(float(np.polyfit(t, r, 1)[0]), 4) if len(s) > 2 else 0.0


def calls_soak(bundle: str, calls: int) -> dict:
    """`calls` select_action calls on 50 rotating frames: RSS and traced Python memory after a 10 % warm-up
    and at the end, and the call latency p50 of the first and the last 10 % (µs)."""
    policy = load_policy(bundle)
    robot = SimRobot.from_policy(policy, seed=1)
    frames = [robot.observation(i) for i in range(50)]
    times = np.empty(calls)
    warm = calls // 10
    for i in range(calls):
        if i == warm:
            gc.collect()
            tracemalloc.start()
            rss0, py0 = rss_mb(), tracemalloc.get_traced_memory()[0]
        t = time.perf_counter()
        policy.select_action(frames[i % 50])
        times[i] = time.perf_counter() - t
    gc.collect()
    py1, rss1 = tracemalloc.get_traced_memory()[0], rss_mb()
    tracemalloc.stop()
    return {"calls": calls, "rss_mb_after_warmup": round(rss0, 2), "rss_mb_end": round(rss1, 2),
            "python_alloc_growth_kib": round((py1 - py0) / 1024, 1),
            "p50_us_first_10pct": round(float(np.median(times[warm:2 * warm])) * 1e6, 1),
            "p50_us_last_10pct": round(float(np.median(times[-warm:])) * 1e6, 1),
            "p99_us": round(float(np.percentile(times[warm:], 99)) * 1e6, 1)}


def markdown(result: dict) -> str:
    s, c = result["loop"]["summary"], result["config"]
    lines = [f"Machine: {result['machine']}", "",
             f"Control loop: {c['mode']} at {c['fps']:g} Hz for {c['minutes']:g} min, sim robot "
             f"(camera latency {c['camera_latency']:g} s, timing record capped at {c['max_records']}): achieved "
             f"{s['achieved_hz']} Hz, {s['ticks']} ticks, "
             f"{s['misses']} misses, {s['skipped_ticks']} skipped, {s['inferences']} inferences; "
             f"RSS slope after warm-up {result['loop']['rss_slope_mb_per_min']} MB/min; "
             f"leaked threads {result['loop']['leaked_threads']}.", "",
             "| minute | RSS MB | Python heap MB | ticks | misses | skipped | latency p50 / p95 / max ms |",
             "|---|---|---|---|---|---|---|"]
    for r in result["loop"]["per_minute"]:
        lat = f"{r.get('lat_p50_ms', '-')} / {r.get('lat_p95_ms', '-')} / {r.get('lat_max_ms', '-')}"
        lines.append(f"| {r['minute']} | {r['rss_mb']} | {r['py_heap_mb'] or '-'} | {r['ticks']} | {r['misses']} | "
                     f"{r['skipped']} | {lat} |")
    k = result["calls"]
    lines += ["", f"select_action x {k['calls']}: RSS {k['rss_mb_after_warmup']} -> {k['rss_mb_end']} MB after "
              f"warm-up, Python allocations +{k['python_alloc_growth_kib']} KiB, p50 {k['p50_us_first_10pct']} -> "
              f"{k['p50_us_last_10pct']} µs (first vs last 10 %), p99 {k['p99_us']} µs"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("bundle")
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--fps", type=float, default=50.0)
    p.add_argument("--mode", default="async", choices=("sync", "async"))
    p.add_argument("--calls", type=int, default=100_000)
    p.add_argument("--camera-latency", type=float, default=0.0)
    p.add_argument("--max-records", type=int, default=100_000,
                   help="ticks/inferences the loop's timing record keeps (ControlLoop's default: 100,000)")
    p.add_argument("--trace", action="store_true", help="also sample the Python heap (tracemalloc; slower)")
    p.add_argument("--out", default="benchmarks/results/soak")
    args = p.parse_args(argv)
    config = {"bundle": args.bundle, "minutes": args.minutes, "fps": args.fps, "mode": args.mode,
              "camera_latency": args.camera_latency, "max_records": args.max_records}
    machine = {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
               "load_avg_before": [round(x, 2) for x in os.getloadavg()]}
    result = {"config": config, "machine": machine,
              "loop": loop_soak(args.bundle, args.minutes, args.fps, args.mode, args.camera_latency,
                                args.max_records, args.trace),
              "calls": calls_soak(args.bundle, args.calls)}
    result["machine"]["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(result))
    print(out.with_suffix(".md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
