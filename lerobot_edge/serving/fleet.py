"""`lerobot-edge fleet-bench URL --robots 1,2,4,8,16`: N simulated robots (threads, each its own RemotePolicy
and observation stream) against one server, for a fixed time per robot count; throughput (chunks/s over all
robots) and per-request latency p50/p99. The robots run on this machine beside the server unless the URL
is another host's, so on a shared CPU the figures include the clients' own load.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Sequence

import numpy as np

from ..runtime.observations import random_observation
from .remote import RemotePolicy


def _robot(url: str, model: str, seed: int, start: threading.Barrier, go: threading.Event, stop_at: list,
           out: list, errors: list, timeout: float, warmup: int) -> None:
    try:
        policy = RemotePolicy(url, model, timeout=timeout)
        rng = np.random.default_rng(seed)
        obs = [random_observation(policy.observation_spec, rng) for _ in range(4)]
        if policy.takes_task:
            for o in obs:
                o["task"] = "pick up the cube"
        for i in range(warmup):
            policy.predict_action_chunk(obs[i % 4])
    except BaseException as e:  # noqa: BLE001
        errors.append(e)
        start.abort()
        return
    try:
        start.wait()
    except threading.BrokenBarrierError:
        return
    go.wait()
    lat, i = [], 0
    while time.perf_counter() < stop_at[0]:
        t0 = time.perf_counter()
        try:
            policy.predict_action_chunk(obs[i % 4])
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
            break
        lat.append(time.perf_counter() - t0)
        i += 1
    out.append(lat)
    policy.close()


def run_point(url: str, model: str, robots: int, *, seconds: float = 8.0, timeout: float = 30.0,
              warmup: int = 2) -> dict[str, Any]:
    """One robot count: every robot loops predict_action_chunk for `seconds` -> the figures of that point."""
    start, go = threading.Barrier(robots + 1), threading.Event()   # all warmed up, then all go at once
    stop_at = [0.0]
    out: list[list[float]] = []
    errors: list[BaseException] = []
    threads = [threading.Thread(target=_robot, args=(url, model, 1000 + r, start, go, stop_at, out, errors,
                                                     timeout, warmup), daemon=True) for r in range(robots)]
    for t in threads:
        t.start()
    try:
        start.wait(timeout * (warmup + 2))
    except threading.BrokenBarrierError:
        raise errors[0] if errors else TimeoutError("the robots did not finish warming up")
    t0 = time.perf_counter()
    stop_at[0] = t0 + seconds
    go.set()
    for t in threads:
        t.join(seconds + timeout * 2)
    wall = time.perf_counter() - t0
    if errors:
        raise errors[0]
    lat = np.array([x for robot in out for x in robot], dtype=np.float64)
    per_robot = [len(r) for r in out]
    return {"robots": robots, "chunks": int(lat.size), "seconds": round(wall, 3),
            "chunks_per_s": round(lat.size / wall, 3),
            "latency_ms": {k: round(float(np.percentile(lat, q)) * 1e3, 2) for k, q in (("p50", 50), ("p99", 99))}
            if lat.size else None, "min_chunks_per_robot": min(per_robot) if per_robot else 0}


def fleet_bench(url: str, model: str, robots: Sequence[int] = (1, 2, 4, 8, 16), *, seconds: float = 8.0,
                timeout: float = 30.0, progress: Callable[[dict], None] | None = None) -> list[dict[str, Any]]:
    """run_point for each robot count, in order."""
    rows = []
    for n in robots:
        row = run_point(url, model, int(n), seconds=seconds, timeout=timeout)
        rows.append(row)
        if progress is not None:
            progress(row)
    return rows


def markdown(results: dict[str, list[dict]]) -> str:
    """{label: rows} -> one table: robots | per label: chunks/s, p50, p99."""
    labels = list(results)
    head = "| robots | " + " | ".join(f"{lab}: chunks/s | p50 ms | p99 ms" for lab in labels) + " |"
    sep = "|---:|" + "---:|---:|---:|" * len(labels)
    counts = sorted({r["robots"] for rows in results.values() for r in rows})
    lines = [head, sep]
    for n in counts:
        cells = []
        for lab in labels:
            r = next((x for x in results[lab] if x["robots"] == n), None)
            cells.append("- | - | -" if r is None or not r["latency_ms"] else
                         f"{r['chunks_per_s']:.1f} | {r['latency_ms']['p50']:.1f} | {r['latency_ms']['p99']:.1f}")
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(results: dict[str, list[dict]], path: str, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for lab, rows in results.items():
        rows = [r for r in rows if r["latency_ms"]]
        n = [r["robots"] for r in rows]
        a.plot(n, [r["chunks_per_s"] for r in rows], "o-", label=lab)
        b.plot(n, [r["latency_ms"]["p50"] for r in rows], "o-", label=f"{lab} p50")
        b.plot(n, [r["latency_ms"]["p99"] for r in rows], "x--", label=f"{lab} p99")
    for ax, ylabel in ((a, "chunks/s (all robots)"), (b, "latency per chunk (ms)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("robots")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
