"""ChunkService (what a served bundle runs per batch of requests) and the wire protocol, in-process on real
onnxruntime sessions: batching, isolation of bad requests, per-client state. No server needed."""

from __future__ import annotations

import numpy as np
import pytest

import tiny_zoo
from lerobot_edge.errors import NonFiniteActionError, ObservationError
from lerobot_edge.runtime.observations import random_observation
from lerobot_edge.serving import protocol as P
from lerobot_edge.serving.handler import ChunkService


def _request(policy, obs, **params):
    """An observation as the wire carries it: batched tensors named by feature keys, frames uint8 HWC."""
    inputs = {k: (P.frame_for_wire(k, v) if policy.observation_spec[k]["kind"] == "image"
                  else np.asarray(v, np.float32)[None]) for k, v in obs.items() if k in policy.observation_spec}
    return inputs, params


def test_compatible_requests_run_as_one_batch_and_bad_ones_fail_alone(act_tiny_bundle):
    policy = tiny_zoo.load(act_tiny_bundle)
    service = ChunkService(policy)
    rng = np.random.default_rng(0)
    obs = [random_observation(policy.observation_spec, rng) for _ in range(3)]
    want = [tiny_zoo.load(act_tiny_bundle).predict_action_chunk(o) for o in obs]
    out = service.handle([_request(policy, o) for o in obs])
    assert policy.graph_rows["act"] == 3 and policy.graph_calls["act"] == 1     # one engine call, batch 3
    for w, r in zip(want, out):
        assert r[P.ERROR][0, 0] == b"" and np.abs(r[P.ACTION][0] - w).max() <= 1e-5
    nan = dict(obs[1], **{"observation.state": np.full(6, np.nan, np.float32)})
    out = service.handle([_request(policy, obs[0]), _request(policy, nan), _request(policy, obs[2])])
    err = P.decode_error(out[1][P.ERROR][0, 0])
    assert isinstance(err, ObservationError) and "NaN" in str(err)
    assert np.isnan(out[1][P.ACTION]).all()                                   # never an action
    for i in (0, 2):
        assert out[i][P.ERROR][0, 0] == b"" and np.abs(out[i][P.ACTION][0] - want[i]).max() <= 1e-5


def test_request_parameters_are_checked(act_tiny_bundle):
    service = ChunkService(tiny_zoo.load(act_tiny_bundle))
    obs = random_observation(service.policy.observation_spec, np.random.default_rng(0))
    out = service.handle([_request(service.policy, obs, colour="red"), _request(service.policy, obs, mode="select"),
                          _request(service.policy, obs, seed="1")])
    msgs = [str(P.decode_error(r[P.ERROR][0, 0])) for r in out]
    assert "colour" in msgs[0] and "mode 'select'" in msgs[1] and "'seed': expected int" in msgs[2]


def test_history_policies_keep_one_state_per_client(request):
    """Diffusion's n_obs_steps history: two robots interleaved on one service equal two local policies."""
    bundle = tiny_zoo.tiny_bundle("diffusion", request)
    service = ChunkService(tiny_zoo.load(bundle), {})
    assert service.keyed
    local = {c: tiny_zoo.load(bundle, seed=s) for c, s in (("a", 1), ("b", 2))}
    rng = np.random.default_rng(3)
    for step in range(6):
        for cid, seed in (("a", 1), ("b", 2)):
            obs = random_observation(local[cid].observation_spec, rng)
            want = local[cid].select_action(obs)
            (got,) = service.handle([_request(local[cid], obs, client_id=cid, seed=seed, mode="select",
                                              reset=step == 0)])
            assert got[P.ERROR][0, 0] == b"", got[P.ERROR]
            assert np.abs(got[P.ACTION][0, 0] - want).max() <= 1e-5
    (anon,) = service.handle([_request(local["a"], obs)])
    assert "client_id" in str(P.decode_error(anon[P.ERROR][0, 0]))


def test_errors_travel_by_type():
    for err in (ObservationError("x: bad"), NonFiniteActionError("nan")):
        back = P.decode_error(P.encode_error(err))
        assert type(back) is type(err) and str(back) == str(err)
    assert P.decode_error(b"") is None
    assert type(P.decode_error(b"KeyError: 'x'")).__name__ == "LeRobotEdgeError"


def test_frames_for_the_wire():
    frame = np.random.default_rng(0).integers(0, 256, (8, 6, 3), dtype=np.uint8)
    assert P.frame_for_wire("k", frame).shape == (1, 8, 6, 3)
    chw = frame.transpose(2, 0, 1).astype(np.float32) / np.float32(255.0)
    assert np.array_equal(P.frame_for_wire("k", chw)[0], frame)              # a k/255 float image is exact
    with pytest.raises(ObservationError, match="uint8 frame divided by 255"):
        P.frame_for_wire("k", chw + np.float32(1e-3))
    assert P.model_name("/x/act aloha/") == "act_aloha"
