"""Bounded soak tests (the long version, with the figures, is benchmarks/soak.py): the async control loop
with the simulated robot at 50 Hz for 20 s, and 10,000 select_action calls, on the tiny ACT bundle. Memory
(RSS and Python allocations), latency and missed ticks must not grow over the run; bounds are generous (the
machine is shared), growth is what they catch."""

from __future__ import annotations

import gc
import os
import time
import tracemalloc

import numpy as np

from lerobot_edge import load_policy
from lerobot_edge.runtime.control.clock import ControlLoop
from lerobot_edge.runtime.control.robots import SimRobot

SOAK_S = 20.0
FPS = 50


def rss_mb() -> float:
    """Resident set size now (not the peak), from /proc (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _halves(values: list[float]) -> tuple[float, float]:
    """Median of the first and the last third (the middle third is a buffer against a start-up transient)."""
    n = len(values) // 3
    return float(np.median(values[:n])), float(np.median(values[-n:]))


def test_async_loop_20s_at_50hz_has_bounded_memory_latency_and_misses(act_tiny_bundle):
    policy = load_policy(act_tiny_bundle)
    robot = SimRobot.from_policy(policy, seed=9)
    samples: list[tuple[float, float, int]] = []             # (seconds, RSS MB, misses so far)
    loop = ControlLoop(policy, robot, fps=FPS, mode="async", max_records=500, status_interval=1.0,
                       status=lambda line: samples.append((time.perf_counter(), rss_mb(),
                                                           loop.record.counts["misses"])))
    report = loop.run(duration=SOAK_S)
    s = report["summary"]
    assert len(samples) >= SOAK_S - 2 and s["ticks"] + s["skipped_ticks"] == SOAK_S * FPS
    # memory: after the first 5 s (allocator and ORT arenas warm), RSS stays within a few MB
    warm = [mb for t, mb, _ in samples[5:]]
    assert max(warm) - warm[0] < 16, f"RSS grew {warm[0]:.1f} -> {max(warm):.1f} MB"
    # the timing record is bounded: the last 500 ticks/inferences are kept, the counters cover the run
    assert len(report["ticks"]) == 500 and len(report["inferences"]) <= 500 and s["ticks"] > 900
    # latency: no drift between the first and the last third of the inferences
    lat = [r["latency"] for r in report["inferences"] if "latency" in r and not r.get("error")]
    first, last = _halves(lat)
    assert last < 3 * first + 0.005, f"inference latency drifted {first * 1e3:.1f} -> {last * 1e3:.1f} ms"
    # missed and skipped ticks: a few on a loaded machine, not a growing number
    assert s["misses"] + s["skipped_ticks"] < 0.05 * SOAK_S * FPS, s
    misses = [m for _, _, m in samples]
    n = len(misses) // 2
    assert misses[-1] - misses[n] <= misses[n] + 10, f"misses accelerate: {misses}"
    assert report["leaked_threads"] == 0 and robot.stats()["actions_received"] == s["ticks"]


def test_10000_select_action_calls_in_constant_memory(act_tiny_bundle):
    policy = load_policy(act_tiny_bundle)
    robot = SimRobot.from_policy(policy, seed=10)
    frames = [robot.observation(i) for i in range(50)]
    times = np.empty(10_000)

    def call(i: int) -> None:
        t = time.perf_counter()
        a = policy.select_action(frames[i % 50])
        times[i] = time.perf_counter() - t
        assert a.shape == (4,)

    for i in range(2_000):                                  # warm-up: arenas, caches, the first chunks
        call(i)
    gc.collect()
    tracemalloc.start()
    rss0, py0 = rss_mb(), tracemalloc.get_traced_memory()[0]
    for i in range(2_000, 10_000):
        call(i)
    gc.collect()
    py1, rss1 = tracemalloc.get_traced_memory()[0], rss_mb()
    tracemalloc.stop()
    assert py1 - py0 < 256 << 10, f"Python allocations grew by {(py1 - py0) / 1024:.0f} KiB over 8,000 calls"
    assert rss1 - rss0 < 16, f"RSS grew {rss0:.1f} -> {rss1:.1f} MB over 8,000 calls"
    p50_start, p50_end = np.median(times[2_000:3_000]), np.median(times[-1_000:])
    assert p50_end < 3 * p50_start + 1e-3, f"select_action p50 drifted {p50_start:.2e} -> {p50_end:.2e} s"
