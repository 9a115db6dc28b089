"""Many robots, one real Triton server (PyTriton) on 127.0.0.1: every robot gets what the local runtime gives,
a bad robot's request fails alone with a typed error, a killed server makes the robots hold and a restarted
one brings them back. One server per policy for the module (a start costs ~5-10 s here); bounded loops."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from lerobot_edge.errors import BackendUnavailableError, ObservationError
from lerobot_edge.runtime.observations import random_observation

import tiny_zoo
from serving_util import ROOT, Server, require_serve_python

pytestmark = [pytest.mark.serving, pytest.mark.slow]
POLICIES = ("act", "diffusion", "pi0")
ROBOTS, STEPS, TOL = 4, 12, 1e-5


@pytest.fixture(scope="module")
def servers(request):
    """One server per policy type, started once for the module and stopped at its end."""
    python = require_serve_python()
    started: dict[str, Server] = {}
    args = {"pi0": ("--rtc", "guided")}    # pi0 with RTC guidance on, so robots can send their leftovers
    yield lambda name: started.get(name) or started.setdefault(
        name, Server(tiny_zoo.tiny_bundle(name, request), name, *args.get(name, ()), python=python).start())
    for s in started.values():
        assert s.stop() == 0, s.log.read_text()[-2000:]


def _robot_run(name, bundle, url, seed, out, steps=STEPS):
    """One simulated robot: its own observation stream; the remote and the local policy side by side."""
    from lerobot_edge.serving import RemotePolicy

    try:
        local = tiny_zoo.load(bundle, seed=seed, **({"rtc": "guided"} if name == "pi0" else {}))
        remote = RemotePolicy(url, name, seed=seed)
        rng = np.random.default_rng(100 + seed)
        errs = []
        for _ in range(steps):
            obs = random_observation(local.observation_spec, rng)
            if local.takes_task:
                obs["task"] = f"robot {seed}: pick up the cube"
            errs.append(float(np.abs(local.select_action(obs) - remote.select_action(obs)).max()))
        errs.append(float(np.abs(local.predict_action_chunk(obs) - remote.predict_action_chunk(obs)).max()))
        if local.supports_rtc:      # RTC: the robot's leftover (robot units) guides the next chunk
            assert remote.supports_rtc
            noise = rng.standard_normal((1, *local.manifest["noise_shape"][1:])).astype(np.float32)
            left = local.predict_action_chunk(obs)[3:]
            kw = {"noise": noise, "inference_delay": 2, "prev_chunk_left_over": left}
            errs.append(float(np.abs(local.predict_action_chunk(obs, **kw) - remote.predict_action_chunk(obs, **kw)).max()))
        out[seed] = max(errs)
        remote.close()
    except BaseException as e:  # noqa: BLE001  (reported by the test)
        out[seed] = e


@pytest.mark.parametrize("name", POLICIES)
def test_robots_get_the_local_runtimes_actions(name, servers, request):
    """ROBOTS threads against one server, concurrently (ACT and pi0 requests batch together on the server;
    Diffusion keeps one observation history per robot): each robot's actions equal the local runtime's."""
    server = servers(name)
    bundle = tiny_zoo.tiny_bundle(name, request)
    out: dict = {}
    threads = [threading.Thread(target=_robot_run, args=(name, bundle, server.url, i, out)) for i in range(ROBOTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    print(f"{name}: max |remote - local| per robot {out}")
    assert sorted(out) == list(range(ROBOTS))
    for i, err in out.items():
        if isinstance(err, BaseException):
            raise err
        assert err <= TOL, (i, err)


def test_a_bad_robot_fails_alone(servers, request):
    """Two good robots and two bad ones at once: a wrong-shaped state (refused by Triton) and a NaN state
    (refused by our runtime) get ObservationError; the good robots' actions are unaffected."""
    from lerobot_edge.serving import RemotePolicy

    server = servers("act")
    bundle = tiny_zoo.tiny_bundle("act", request)
    local = tiny_zoo.load(bundle)
    good: dict = {}
    errors: dict = {}

    def bad(kind):
        remote = RemotePolicy(server.url, "act")
        obs = random_observation(local.observation_spec, np.random.default_rng(7))
        obs["observation.state"] = np.zeros(7, np.float32) if kind == "shape" else np.full(6, np.nan, np.float32)
        for _ in range(STEPS):
            try:
                remote.predict_action_chunk(obs)
            except ObservationError as e:
                errors.setdefault(kind, []).append(str(e))

    threads = [threading.Thread(target=_robot_run, args=("act", bundle, server.url, i, good)) for i in range(2)]
    threads += [threading.Thread(target=bad, args=(k,)) for k in ("shape", "nan")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert all(not isinstance(e, BaseException) and e <= TOL for e in good.values()) and len(good) == 2, good
    assert len(errors["shape"]) == STEPS and "observation.state" in errors["shape"][0]
    assert len(errors["nan"]) == STEPS and "NaN" in errors["nan"][0]


def test_server_killed_then_restarted(request, tmp_path):
    """A control loop on a remote policy: the server is killed mid-run (the loop holds the last action and
    counts the unavailable requests), then restarted on the same port (the loop gets chunks again)."""
    from lerobot_edge.runtime.control import ControlLoop, SimRobot
    from lerobot_edge.serving import RemotePolicy

    bundle = tiny_zoo.tiny_bundle("act", request)
    server = Server(bundle, "act", log=tmp_path / "server.log").start()
    try:
        policy = RemotePolicy(server.url, bundle, model="act", timeout=2.0)
        loop = ControlLoop(policy, SimRobot.from_policy(policy), fps=20, mode="async", queue_threshold=2)
        runner = threading.Thread(target=loop.run, kwargs={"duration": 120.0})
        loop.start()
        runner.start()
        _wait(lambda: loop.record.counts["inferences"] >= 3, 30, "first chunks")
        server.kill()
        _wait(lambda: loop.record.counts["unavailable"] >= 3, 30, "unavailable requests while the server is down")
        held = loop.record.sources["hold"]
        before = loop.record.counts["inferences"]
        server.start()
        _wait(lambda: loop.record.counts["inferences"] >= before + 3, 60, "chunks after the restart")
        loop.request_stop()
        runner.join(60)
        loop.stop()
        report = loop.report()
        s = report["summary"]
        print({k: s[k] for k in ("ticks", "misses", "unavailable", "inferences")}, s["sources"])
        assert held > 0 and s["unavailable"] >= 3 and s["inferences"] >= before + 3
        assert report["stopped_by"] == "request" and not runner.is_alive()
        assert any(r.get("unavailable") for r in report["inferences"])
    finally:
        server.stop()


def test_unavailable_server_is_a_typed_error_with_backoff(act_tiny_bundle):
    pytest.importorskip("tritonclient.grpc")
    from lerobot_edge.serving import RemotePolicy

    policy = RemotePolicy("grpc://127.0.0.1:9", act_tiny_bundle, timeout=1.0)
    obs = random_observation(policy.observation_spec, np.random.default_rng(0))
    with pytest.raises(BackendUnavailableError) as first:
        policy.select_action(obs)
    t0 = time.perf_counter()
    with pytest.raises(BackendUnavailableError, match="next attempt"):
        policy.select_action(obs)      # inside the backoff window: no network, at once
    assert time.perf_counter() - t0 < first.value.retry_after + 0.5


def test_cli_run_remote(servers, request, tmp_path):
    """`lerobot-edge run MODEL --remote URL` drives the simulated robot with the served policy."""
    server = servers("act")
    report = tmp_path / "run.json"
    r = subprocess.run([sys.executable, "-m", "lerobot_edge", "run", "act", "--remote", server.url, "--fps", "20",
                        "--duration", "2", "--quiet", "--report", str(report)],
                       capture_output=True, text=True, timeout=120, cwd=ROOT,
                       env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr
    assert "remote:127.0.0.1" in r.stdout and report.exists()


def _wait(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)
