"""Hostile observations for every policy type (property-based): wrong dtypes and shapes, missing and extra
keys, NaN/inf, images of the wrong size or channel order, batch mismatches between keys, empty and very long
task strings. Each bad observation is an ObservationError naming the key, raised before any state changes
(queues, observation history, planner warm start, random generator); each good one gives finite actions; the
caller's arrays are never modified."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
import tiny_zoo
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lerobot_edge.errors import ObservationError
from lerobot_edge.runtime.observations import random_observation

STATE_ATTRS = ("queue", "history", "prev_mean", "rng", "ensembler")   # everything a call may advance
EXTRA_CAMERA = "observation.images.zzz_not_a_camera"


@pytest.fixture(scope="module", params=tiny_zoo.POLICY_TYPES)
def subject(request):
    name = request.param
    policy = tiny_zoo.load(tiny_zoo.tiny_bundle(name, request))
    return name, policy


def good_observation(name: str, policy, rng: np.random.Generator) -> dict:
    obs = random_observation(policy.observation_spec, rng)
    if tiny_zoo.takes_task(name):
        obs["task"] = "pick the red cube"
    return obs


def snapshot(policy) -> bytes:
    """The policy's mutable state, serialized (pickle of our own objects, never of untrusted data)."""
    return pickle.dumps({a: getattr(policy, a) for a in STATE_ATTRS if hasattr(policy, a)})


# ---------------------------------------------------------------------------------------------- mutations


def _canonical(spec: dict, dtype=np.uint8) -> tuple[int, ...]:
    """The unbatched shape a key takes: HWC for uint8 frames, CHW for float images, the vector's shape."""
    shape = tuple(spec["shape"])
    if spec["kind"] == "image" and dtype == np.uint8:
        return shape[1], shape[2], shape[0]
    return shape


def _valid_shape(spec: dict, shape: tuple, vla: bool) -> bool:
    s = _canonical(spec)
    if spec["kind"] == "image" and vla:
        return len(shape) in (3, 4) and shape[-1] == 3 and all(d >= 1 for d in shape) and (len(shape) == 3 or
                                                                                           shape[0] == 1)
    return shape in (s, (1, *s))


def mutate(data, name: str, policy, obs: dict) -> tuple[dict, str, str | None]:
    """-> (observation, "accept" | "reject", text the error must contain)."""
    spec = policy.observation_spec
    vla = tiny_zoo.takes_task(name)
    key = data.draw(st.sampled_from(sorted(spec)), label="key")
    s, image = spec[key], spec[key]["kind"] == "image"
    cams = [k for k, v in spec.items() if v["kind"] == "image"]
    kinds = ["missing", "dtype", "shape", "nonfinite", "batch", "empty_batch", "extra_camera", "extra_key",
             "junk", "pylist", "all_batched"] + (["channel_order", "size"] if image else [])
    kinds += ["task"] if vla else []
    kind = data.draw(st.sampled_from(kinds), label="kind")
    obs = dict(obs)
    if kind == "missing":
        del obs[key]
        ok = vla and image and len(cams) > 1            # VLAs fill a missing camera as LeRobot does
        return obs, "accept" if ok else "reject", None if ok else key
    if kind == "dtype":
        dt = data.draw(st.sampled_from([np.bool_, "U3", object, np.complex64, np.int32, np.uint16, np.int8,
                                        np.float16, np.float64]), label="dtype")
        dt = np.dtype(dt)
        shape = _canonical(s, np.uint8 if dt.kind != "f" else np.float32)
        obs[key] = np.zeros(shape, dt) if dt.kind != "U" else np.full(shape, "ab")
        ok = dt.kind == "f" or (dt.kind in "iu" and not image)
        return obs, "accept" if ok else "reject", None if ok else key
    if kind == "shape":
        shape = tuple(data.draw(st.lists(st.integers(0, 7), max_size=4), label="shape"))
        if data.draw(st.booleans(), label="near"):      # near misses: the right shape with one axis changed
            shape = list(_canonical(s))
            i = data.draw(st.integers(0, len(shape) - 1))
            shape[i] += data.draw(st.sampled_from([-1, 1, 2]))
            shape = tuple(shape)
        obs[key] = np.zeros(shape, np.uint8 if image else np.float32)
        ok = _valid_shape(s, shape, vla)
        return obs, "accept" if ok else "reject", None if ok else key
    if kind == "nonfinite":
        shape = _canonical(s, np.float32)
        arr = (np.full(shape, 0.5, np.float32) if image else np.asarray(obs[key], np.float32).copy())
        idx = data.draw(st.integers(0, arr.size - 1), label="index")
        arr.reshape(-1)[idx] = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]), label="value")
        obs[key] = arr
        return obs, "reject", key
    if kind in ("batch", "empty_batch"):
        b = 0 if kind == "empty_batch" else data.draw(st.integers(2, 3), label="batch")
        obs[key] = np.repeat(np.asarray(obs[key])[None], b, axis=0)
        if kind == "batch" and len(spec) == 1:          # one key: a consistent batch (nothing queued for B=1)
            policy.reset()
            return obs, "accept", None
        return obs, "reject", key if kind == "empty_batch" else "batch"
    if kind == "extra_camera":
        obs[EXTRA_CAMERA] = np.asarray(obs[cams[0]]) if cams else np.zeros((8, 8, 3), np.uint8)
        return obs, "reject", EXTRA_CAMERA
    if kind == "extra_key":
        junk = data.draw(st.one_of(st.none(), st.text(max_size=5), st.floats(), st.just(np.zeros(3))))
        obs[data.draw(st.sampled_from(["timestamp", "index", "frame_index", "episode_index", "foo.bar"]))] = junk
        return obs, "accept", None
    if kind == "junk":
        obs[key] = data.draw(st.sampled_from([None, "x", 3.5, [], {}, b"\x00"]), label="junk")
        return obs, "reject", key
    if kind == "pylist":       # a list of floats is a fine state; a list of ints is not a uint8 frame
        obs[key] = np.asarray(obs[key]).tolist()
        return obs, "reject" if image else "accept", key if image else None
    if kind == "all_batched":   # consistent batch of 2 everywhere: fine (the queue is emptied first)
        policy.reset()
        obs = {k: (np.stack([v, v]) if k in spec else v) for k, v in obs.items()}
        if vla:
            obs["task"] = ["pick", "place"]
        return obs, "accept", None
    if kind == "channel_order":
        h, w, c = _canonical(s)
        obs[key] = data.draw(st.sampled_from([np.zeros((c, h, w), np.uint8), np.zeros((h, w, c), np.float32)]))
        return obs, "reject", key
    if kind == "size":
        h, w, c = _canonical(s)
        dh, dw = data.draw(st.sampled_from([(1, 0), (0, -1), (-h // 2, w), (h, h)]), label="resize")
        obs[key] = np.zeros((h + dh, w + dw, c), np.uint8)
        return obs, "accept" if vla else "reject", None if vla else key
    task = data.draw(st.sampled_from(["", "pick " * 2000, None, 7, ["a", "b"], ["one"], ("t",)]), label="task")
    if task is None:
        obs.pop("task")
    else:
        obs["task"] = task
    # a policy may default an absent task (LeRobot's groot) or take a list's first task for the batch (groot)
    if task is None:
        ok = policy.default_task is not None
    elif isinstance(task, (list, tuple)):
        ok = len(task) == 1 or (not policy.task_per_row and all(isinstance(t, str) for t in task))
    else:
        ok = isinstance(task, str)
    return obs, "accept" if ok else "reject", None if ok else "task"


# ---------------------------------------------------------------------------------------------- the property


def _copy(obs: dict) -> dict:
    return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in obs.items()}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        np.array_equal(a[k], b[k], equal_nan=a[k].dtype.kind == "f") if isinstance(a[k], np.ndarray)
        else a[k] is b[k] or a[k] == b[k] for k in a)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_hostile_observations_are_named_and_change_nothing(subject, data):
    name, policy = subject
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16), label="seed"))
    good = good_observation(name, policy, rng)
    policy.reset()
    policy.select_action(good)                          # something queued / in the history to protect
    obs, expect, needle = mutate(data, name, policy, good)
    method = data.draw(st.sampled_from(["select_action", "predict_action_chunk"]), label="method")
    given_obs, before = _copy(obs), snapshot(policy)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")              # truncation of a very long task warns, as LeRobot
            out = getattr(policy, method)(obs)
    except ObservationError as e:
        assert expect == "reject", f"a valid observation was refused: {e}"
        assert needle is None or needle in str(e), f"error does not name {needle!r}: {e}"
        assert snapshot(policy) == before, "a rejected call changed the policy's state"
    else:
        assert expect == "accept", f"accepted an observation that should be refused ({needle})"
        assert np.isfinite(out).all()
        dim = policy.manifest["action"]["shape"][-1]
        assert out.shape[-1] in (dim, dim + 1)           # SAC appends its discrete gripper index
    assert _same(obs, given_obs), "the caller's observation was modified"


def test_not_a_mapping_is_refused_for_every_policy(subject):
    name, policy = subject
    for obs in (None, [1, 2], "observation.state", np.zeros(3)):
        with pytest.raises(ObservationError, match="dict"):
            policy.select_action(obs)


def test_batch_change_with_actions_queued_is_refused(subject):
    """LeRobot would hand a batch of two robots an action queued for one; we refuse until reset()."""
    name, policy = subject
    good = good_observation(name, policy, np.random.default_rng(0))
    two = {k: (np.stack([v, v]) if k in policy.observation_spec else v) for k, v in good.items()}
    if tiny_zoo.takes_task(name):
        two["task"] = ["pick", "place"]
    policy.reset()
    policy.select_action(good)
    if not hasattr(policy, "queue"):                    # SAC: stateless, any batch any time
        assert policy.select_action(two).shape[0] == 2
        return
    before = snapshot(policy)
    with pytest.raises(ObservationError, match="batch size 2 differs"):
        policy.select_action(two)
    assert snapshot(policy) == before
    policy.reset()
    assert policy.select_action(two).shape[0] == 2
