"""The control loop's timing record: one entry per tick and per inference, counters, and summaries
(p50 / p95 / max) for the live status line and the JSON report. Times are seconds since the loop's clock
started (t0); summaries are in milliseconds."""

from __future__ import annotations

import threading
from collections import deque
from typing import Iterable

import numpy as np

# where a tick's action came from
SOURCES = ("chunk", "policy", "hold", "callback", "none")
COUNTERS = ("ticks", "misses", "overruns", "skipped_ticks", "limited", "inferences", "rejected", "stale_chunks",
            "unavailable")


def _stats_ms(values: Iterable[float]) -> dict | None:
    """p50 / p95 / max in milliseconds, or None when there is nothing to summarize."""
    a = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if a.size == 0:
        return None
    p50, p95 = np.percentile(a, [50, 95])
    return {"p50": round(float(p50) * 1e3, 3), "p95": round(float(p95) * 1e3, 3),
            "max": round(float(a.max()) * 1e3, 3)}


class TimingRecord:
    """Thread-safe. Ticks and inferences are kept in bounded deques (the last `max_records` of each), so a
    run of a day has constant memory; the counters cover the whole run."""

    def __init__(self, fps: float, max_records: int = 100_000):
        self.fps = float(fps)
        self.ticks: deque[dict] = deque(maxlen=max_records)
        self.inferences: deque[dict] = deque(maxlen=max_records)
        self.counts = {k: 0 for k in COUNTERS}
        self.sources = {k: 0 for k in SOURCES}
        self._first_sent: float | None = None
        self._last_sent: float | None = None
        self._lock = threading.Lock()

    def tick(self, *, step: int, scheduled: float, sent: float, source: str, queue: int | None = None,
             chunk: int = -1, index: int = -1, obs_age: float | None = None, latency: float | None = None,
             overrun: bool = False, limited: bool = False) -> None:
        """One control tick. scheduled/sent: seconds since t0; lateness = sent - scheduled."""
        rec = {"step": step, "t": round(scheduled, 6), "late": round(sent - scheduled, 6), "source": source,
               "queue": queue, "chunk": chunk, "index": index, "obs_age": obs_age, "latency": latency,
               "overrun": overrun, "limited": limited}
        with self._lock:
            self.ticks.append(rec)
            self.counts["ticks"] += 1
            self.sources[source] += 1
            self.counts["misses"] += source not in ("chunk", "policy")
            self.counts["overruns"] += overrun
            self.counts["limited"] += limited
            if source != "none":
                self._first_sent = sent if self._first_sent is None else self._first_sent
                self._last_sent = sent

    def inference(self, rec: dict) -> None:
        """One inference: id, obs_step, at_step, delay, merged, stale, latency, obs_age, leftover,
        inference_delay, queue_before, error."""
        with self._lock:
            self.inferences.append(rec)
            if rec.get("unavailable"):
                self.counts["unavailable"] += 1
            elif rec.get("error"):
                self.counts["rejected"] += 1
            else:
                self.counts["inferences"] += 1
                self.counts["stale_chunks"] += bool(rec.get("stale"))

    def add(self, counter: str, n: int = 1) -> None:
        with self._lock:
            self.counts[counter] += n

    def achieved_hz(self, elapsed: float | None = None) -> float | None:
        """Sent actions per second of the run (`elapsed` seconds since t0), or, without it, over the span
        between the first and the last sent action."""
        n = self.counts["ticks"] - self.sources["none"]
        if elapsed:
            return n / elapsed
        if self._first_sent is None or n < 2 or self._last_sent <= self._first_sent:
            return None
        return (n - 1) / (self._last_sent - self._first_sent)

    def summary(self, window: int | None = None, elapsed: float | None = None) -> dict:
        """Counters and p50/p95/max (ms) of tick lateness, tick period, inference latency, observation age;
        queue depth p50/min/max. `window`: only the last N ticks / inferences (the live status line);
        `elapsed`: seconds since the clock started (for the achieved rate)."""
        with self._lock:
            ticks = list(self.ticks)[-window:] if window else list(self.ticks)
            infs = [r for r in (list(self.inferences)[-window:] if window else self.inferences) if not r.get("error")]
            counts, sources = dict(self.counts), dict(self.sources)
        sent = [r["t"] + r["late"] for r in ticks if r["source"] != "none"]
        queue = [r["queue"] for r in ticks if r["queue"] is not None]
        hz = self.achieved_hz(elapsed)
        return {
            "fps": self.fps, "achieved_hz": None if hz is None else round(hz, 3), **counts, "sources": sources,
            "lateness_ms": _stats_ms(r["late"] for r in ticks),
            "period_ms": _stats_ms(np.diff(sent)) if len(sent) > 1 else None,
            "latency_ms": _stats_ms([r["latency"] for r in infs] + [r["latency"] for r in ticks]),
            "obs_age_ms": _stats_ms([r["obs_age"] for r in infs] + [r["obs_age"] for r in ticks]),
            "queue": None if not queue else {"p50": float(np.percentile(queue, 50)), "min": int(min(queue)),
                                             "max": int(max(queue))},
        }

    def status_line(self, elapsed: float) -> str:
        """One line: rate, latency p50/p95, queue depth, misses."""
        s = self.summary(window=max(10, int(self.fps * 2)), elapsed=elapsed)
        lat = s["latency_ms"] or {"p50": float("nan"), "p95": float("nan")}
        hz = s["achieved_hz"] or 0.0
        q = "-" if s["queue"] is None else f"{s['queue']['min']}..{s['queue']['max']}"
        return (f"t={elapsed:6.1f}s  rate {hz:6.2f}/{self.fps:g} Hz  latency p50 {lat['p50']:.1f} "
                f"p95 {lat['p95']:.1f} ms  queue {q}  misses {s['misses']}  skipped {s['skipped_ticks']}")
