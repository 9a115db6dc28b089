"""The output guard, for every policy type: a bundle whose graph yields NaN (its weights edited to NaN and the
bundle resealed, as an attacker or a corrupted conversion would leave it) never produces an action, whichever
graph of the chunk is poisoned, and nothing is queued; in the control loop such a chunk is never sent and the
loop holds, then stops. Optional clamping keeps every sent action inside the dataset's recorded range."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import tiny_zoo
from test_hostile import reseal

from lerobot_edge.errors import NonFiniteActionError
from lerobot_edge.runtime.control.clock import ControlLoop
from lerobot_edge.runtime.control.robots import SimRobot
from lerobot_edge.runtime.control.safety import ActionLimits
from lerobot_edge.runtime.observations import random_observation

onnx = pytest.importorskip("onnx", reason="the poisoned graphs are written with the onnx package")


def poison(bundle: Path, graph_file: str) -> None:
    """Every float initializer of `graph_file` set to NaN, external data rewritten, checksums resealed."""
    from onnx import numpy_helper

    path = bundle / graph_file
    model = onnx.load(str(path), load_external_data=True)
    for t in model.graph.initializer:
        arr = numpy_helper.to_array(t)
        if arr.dtype.kind == "f" and arr.size:
            t.CopyFrom(numpy_helper.from_array(np.full_like(arr, np.nan), t.name))
    data = path.with_name(path.name + ".data")
    data.unlink(missing_ok=True)
    onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
              location=data.name)
    data.touch()                       # a graph whose tensors all fit inline keeps its (now empty) data file
    reseal(bundle)


def observation(name: str, policy) -> dict:
    obs = random_observation(policy.observation_spec, np.random.default_rng(0))
    if tiny_zoo.takes_task(name):
        obs["task"] = "pick the red cube"
    return obs


def graphs_of_a_chunk(name: str, bundle: Path) -> list[str]:
    """The graphs one chunk runs (TDMPC with MPC never runs `pi`, for example)."""
    policy = tiny_zoo.load(bundle)
    policy.predict_action_chunk(observation(name, policy))
    return sorted(g for g, n in policy.graph_calls.items() if n)


@pytest.mark.parametrize("name", tiny_zoo.POLICY_TYPES)
def test_nan_from_any_graph_is_never_returned(name, request, tmp_path):
    clean = tiny_zoo.tiny_bundle(name, request)
    for graph in graphs_of_a_chunk(name, clean):
        b = tmp_path / graph
        shutil.copytree(clean, b)
        poison(b, tiny_zoo.load(clean).bundle.graphs[graph].file)
        policy = tiny_zoo.load(b)
        obs = observation(name, policy)
        with pytest.raises(NonFiniteActionError, match="NaN"):
            policy.predict_action_chunk(obs)
        with pytest.raises(NonFiniteActionError, match="NaN"):
            policy.select_action(obs)
        assert len(getattr(policy, "queue", ())) == 0, f"{graph}: a poisoned chunk was queued"


def test_nan_bundle_in_the_loop_sends_nothing_then_stops(act_tiny_bundle, tmp_path):
    b = tmp_path / "b"
    shutil.copytree(act_tiny_bundle, b)
    poison(b, "act.onnx")
    policy = tiny_zoo.load(b)
    for mode in ("sync", "async"):
        robot = SimRobot.from_policy(policy)
        loop = ControlLoop(policy, robot, fps=50, mode=mode, max_rejections=5, startup_timeout=10)
        with pytest.raises(NonFiniteActionError):
            loop.run(duration=5.0)
        assert robot.actions == [], f"{mode}: an action was sent"


def test_clamping_keeps_sent_actions_in_the_recorded_range(act_tiny_bundle):
    policy = tiny_zoo.load(act_tiny_bundle)
    stats = policy.bundle.stats()["action"]
    # a range far narrower than what the policy outputs, so the clamp is exercised on every tick
    mid = (stats["min"] + stats["max"]) / 2
    narrow = {"min": mid - 0.01, "max": mid + 0.01}
    limits = ActionLimits.from_stats(narrow, clamp=True)
    robot = SimRobot.from_policy(policy, seed=1)
    report = ControlLoop(policy, robot, fps=50, mode="sync", limits=limits).run(duration=1.0)
    sent = np.stack([a for _, a in robot.actions])
    assert (sent >= narrow["min"] - 1e-6).all() and (sent <= narrow["max"] + 1e-6).all()
    assert sum(t["limited"] for t in report["ticks"]) > len(sent) // 2


def test_limits_pass_through_sacs_discrete_gripper_index():
    """SAC appends its discrete gripper index after the A continuous actions the stats describe."""
    lim = ActionLimits(low=np.zeros(2, np.float32), high=np.ones(2, np.float32), max_step=np.full(2, 0.5, np.float32))
    out, limited = lim.apply(np.array([2.0, -1.0, 2.0], np.float32), np.array([0.8, 0.2, 0.0], np.float32))
    np.testing.assert_allclose(out, [1.0, 0.0, 2.0])
    assert limited
