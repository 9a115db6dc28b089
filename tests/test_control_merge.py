"""Chunk merging, the RTC hook and the loop's failure handling, with EdgePolicy-like fakes whose chunks say
where they came from (chunk k holds [k, index] per step)."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
from control_fakes import STATE_SPEC, ChunkPolicy, FaultyRobot, inference_threads

from lerobot_edge.errors import ObservationError
from lerobot_edge.runtime.control.chunks import ChunkBuffer, delay_steps
from lerobot_edge.runtime.control.clock import ControlLoop, supports_rtc
from lerobot_edge.runtime.control.robots import SimRobot


def chunk(k: int, n: int = 6) -> np.ndarray:
    return np.stack([np.full(n, k, np.float32), np.arange(n, dtype=np.float32)], 1)   # (n, 2)


def drain(buf: ChunkBuffer, start: int, n: int) -> list:
    return [None if (it := buf.pop(s)) is None else tuple(it[0]) for s in range(start, start + n)]


# -- ChunkBuffer: merge by control step ----------------------------------------------------------------
def test_replace_drops_the_past_and_the_old_queue():
    buf = ChunkBuffer("replace")
    buf.merge(chunk(0), obs_step=0, chunk_id=0)
    assert drain(buf, 0, 2) == [(0, 0), (0, 1)]
    info = buf.merge(chunk(1), obs_step=1, chunk_id=1)                    # observed at step 1, now step 2
    assert info == {"at_step": 2, "delay": 1, "merged": 5, "stale": False}
    assert drain(buf, 2, 6) == [(1, 1), (1, 2), (1, 3), (1, 4), (1, 5), None]


def test_append_finishes_the_queue_first():
    buf = ChunkBuffer("append")
    buf.merge(chunk(0), 0, 0)
    drain(buf, 0, 2)
    buf.merge(chunk(1), obs_step=1, chunk_id=1)
    assert drain(buf, 2, 6) == [(0, 2), (0, 3), (0, 4), (0, 5), (1, 5), None]


def test_weighted_average_mixes_overlapping_steps_like_lerobot():
    buf = ChunkBuffer("weighted_average")
    buf.merge(chunk(0), 0, 0)
    drain(buf, 0, 3)
    buf.merge(chunk(10), obs_step=3, chunk_id=1)
    got = [a for a in drain(buf, 3, 7)]
    assert got[:3] == [pytest.approx((7.0, 0.3 * (3 + j) + 0.7 * j)) for j in range(3)]  # overlap, 0.3 old
    assert got[3:6] == [(10, 3), (10, 4), (10, 5)] and got[6] is None


def test_callable_merge_and_unknown_merge():
    buf = ChunkBuffer(lambda old, new: np.minimum(old, new))
    buf.merge(chunk(5), 0, 0)
    buf.merge(chunk(1), 0, 1)
    assert drain(buf, 0, 2) == [(1, 0), (1, 1)]
    with pytest.raises(ValueError, match="merge="):
        ChunkBuffer("median")


def test_stale_chunks_and_cleared_buffers_are_not_merged():
    buf = ChunkBuffer()
    drain(buf, 0, 10)
    assert buf.merge(chunk(0), obs_step=2, chunk_id=0)["stale"]          # all 6 steps already past
    step, left, gen = buf.snapshot()
    buf.clear()                                                           # a new episode
    assert buf.merge(chunk(1), step, 1, gen)["stale"] and buf.remaining() == 0


def test_delay_steps_is_lerobots_ceil():
    assert [delay_steps(x, 50) for x in (0, 0.001, 0.02, 0.0201, 0.06)] == [0, 1, 1, 2, 3]


# -- the RTC hook --------------------------------------------------------------------------------------------
def test_rtc_gets_exactly_the_unexecuted_leftover_and_the_measured_delay():
    """The policy gets prev_chunk_left_over = the part of the previous chunk not yet sent when its
    observation was taken (robot units, unclamped), inference_delay = ceil(max tracked latency * fps); the
    new chunk takes over at the step it arrives, from the index that many steps in."""
    lat = [0.02, 0.05, 0.09, 0.03, 0.07, 0.04, 0.08, 0.02, 0.06, 0.05]
    policy = ChunkPolicy(chunk_size=20, rtc=True, latency=lambda k: lat[k % len(lat)])
    robot = SimRobot(STATE_SPEC, 2)
    loop = ControlLoop(policy, robot, fps=50, mode="async", queue_threshold=8)
    assert loop.rtc and loop.merge == "rtc" and supports_rtc(policy)
    report = loop.run(duration=2.5)
    infs = {r["id"]: r for r in report["inferences"]}
    assert len(infs) >= 6 and report["summary"]["rejected"] == 0
    assert policy.calls[0]["prev"] is None and policy.calls[0]["inference_delay"] == 0
    sent = {t["step"]: (t["chunk"], t["index"]) for t in report["ticks"] if t["source"] == "chunk"}
    for k in range(1, len(infs)):
        r, prev = infs[k], infs[k - 1]
        # leftover: chunk k-1 from the step chunk k's observation was taken, to its end
        expect = policy.chunk(k - 1)[r["obs_step"] - prev["obs_step"]:]
        np.testing.assert_array_equal(policy.calls[k]["prev"], expect)
        # ... of which the first `delay` entries were then sent while chunk k was computed
        for s in range(r["obs_step"], r["at_step"]):
            assert sent.get(s, (k - 1, s - prev["obs_step"])) == (k - 1, s - prev["obs_step"])
        # inference_delay from the latencies measured so far (the first chunk ran before the clock)
        tracked = [infs[j]["latency"] for j in range(1, k)]
        assert policy.calls[k]["inference_delay"] == math.ceil(max(tracked, default=0) * 50 - 1e-9)
        # the new chunk starts at its planned step
        if r["at_step"] in sent:
            assert sent[r["at_step"]] == (k, r["delay"])
    assert max(c["inference_delay"] for c in policy.calls) >= 3          # 50+ ms latencies were measured


def test_non_rtc_policies_get_no_rtc_kwargs():
    policy = ChunkPolicy(rtc=False)
    ControlLoop(policy, SimRobot(STATE_SPEC, 2), fps=50, mode="async").run(duration=0.5)
    assert all(c["prev"] is None and c["inference_delay"] is None for c in policy.calls)


# -- misses, rejections and failures --------------------------------------------------------------------------
def test_slow_chunks_use_the_miss_callback():
    policy = ChunkPolicy(chunk_size=4, latency=0.1)
    seen = []

    def on_miss(step, last):
        seen.append(step)
        return np.array([-1.0, step], np.float32)

    robot = SimRobot(STATE_SPEC, 2)
    report = ControlLoop(policy, robot, fps=50, mode="async", on_miss=on_miss).run(duration=1.0)
    s = report["summary"]
    assert s["sources"]["callback"] == len(seen) == s["misses"] > 10
    sent = {t["step"]: a for t, (_, a) in zip(report["ticks"], robot.actions)}
    assert all(sent[st][0] == -1 and sent[st][1] == st for st in seen)


def test_rejected_observations_never_produce_actions():
    policy = ChunkPolicy(chunk_size=6, reject_on=(2, 3))
    robot = SimRobot(STATE_SPEC, 2)
    report = ControlLoop(policy, robot, fps=50, mode="async").run(duration=1.0)
    used = {t["chunk"] for t in report["ticks"] if t["source"] == "chunk"}
    assert report["summary"]["rejected"] == 2 and not used & {2, 3}
    assert [r["id"] for r in report["inferences"] if r.get("error")] == [2, 3]   # one id per attempt
    assert all(a[0] not in (2, 3) for _, a in robot.actions)


def test_too_many_rejections_in_a_row_raise():
    policy = ChunkPolicy(chunk_size=6, reject_on=tuple(range(1, 100)))
    loop = ControlLoop(policy, SimRobot(STATE_SPEC, 2), fps=50, mode="async", max_rejections=3)
    with pytest.raises(ObservationError, match="bad frame"):
        loop.run(duration=10.0)
    assert not inference_threads() and loop.record.counts["rejected"] == 3


def test_an_exception_in_inference_reaches_the_caller():
    policy = ChunkPolicy(chunk_size=6, fail_on=(2,))
    loop = ControlLoop(policy, SimRobot(STATE_SPEC, 2), fps=50, mode="async")
    with pytest.raises(RuntimeError, match="boom in call 2") as info:
        loop.run(duration=10.0)
    assert "inference thread" in " ".join(getattr(info.value, "__notes__", ["inference thread"]))
    assert not inference_threads() and loop.report()["duration_s"] < 5


def test_a_failing_first_chunk_fails_start():
    loop = ControlLoop(ChunkPolicy(fail_on=(0,)), SimRobot(STATE_SPEC, 2), fps=50, mode="async")
    with pytest.raises(RuntimeError, match="boom in call 0"):
        loop.run(duration=1.0)
    assert not inference_threads()


def test_robot_raising_in_the_inference_thread_reaches_the_caller():
    robot = FaultyRobot(STATE_SPEC, 2, fail_observe_at=2)
    loop = ControlLoop(ChunkPolicy(chunk_size=6), robot, fps=50, mode="async")
    with pytest.raises(ConnectionError, match="camera unplugged"):
        loop.run(duration=10.0)
    assert not inference_threads()


def test_request_stop_from_another_thread_during_inference():
    gate = threading.Event()
    policy = ChunkPolicy(chunk_size=6, block=gate)                 # call 1 blocks until the gate opens
    robot = SimRobot(STATE_SPEC, 2)
    loop = ControlLoop(policy, robot, fps=50, mode="async")
    threading.Timer(0.4, loop.request_stop).start()
    threading.Timer(0.6, gate.set).start()
    report = loop.run(duration=None)
    assert report["stopped_by"] == "request" and not inference_threads()
    assert {t["chunk"] for t in report["ticks"]} <= {0, -1} and len(policy.calls) == 2
