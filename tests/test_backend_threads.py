"""Thread and pinning options per backend (backend_options): applied to the real sessions, reported back in
`session.settings`, per graph through graph_options; unknown keys and bad values are errors naming them."""

from __future__ import annotations

import numpy as np
import pytest

from lerobot_edge import load_policy
from lerobot_edge.backends import get_backend
from lerobot_edge.runtime.observations import random_observation


def _needs(name):
    if not get_backend(name).is_available():
        pytest.skip(f"{name} is not installed here")


def test_onnxruntime_threads_affinities_and_per_graph_options(act_tiny_bundle):
    _needs("onnxruntime")
    opts = {"threads": 2, "inter_op_threads": 1, "intra_op_affinities": "1", "spinning": False}
    policy = load_policy(act_tiny_bundle, "onnxruntime", backend_options=opts)
    s = policy.sessions["act"]
    assert s.session.get_session_options().intra_op_num_threads == 2
    assert s.settings["intra_op_num_threads"] == 2 and s.settings["intra_op_affinities"] == "1"
    obs = random_observation(policy.observation_spec, np.random.default_rng(0))
    assert np.isfinite(policy.predict_action_chunk(obs)).all()
    per_graph = load_policy(act_tiny_bundle, "onnxruntime",
                            backend_options={"threads": 1, "graph_options": {"act": {"threads": 2}}})
    assert per_graph.sessions["act"].settings["intra_op_num_threads"] == 2


@pytest.mark.parametrize("opts, needle", [
    ({"intra_op_affinities": "1;2"}, "intra_op_affinities"),               # needs threads = groups + 1
    ({"threads": 2, "intra_op_affinities": "x"}, "intra_op_affinities"),
    ({"inter_op_threads": -1}, "inter_op_threads"),
    ({"threads": "2"}, "threads"),
    ({"graph_options": {"act": {"nosuch": 1}}}, "nosuch"),
    ({"graph_options": {"nosuch_graph": {"threads": 1}}}, "nosuch_graph"),
    ({"pinning": True}, "pinning"),                                          # an OpenVINO key
])
def test_onnxruntime_bad_thread_options_are_named(act_tiny_bundle, opts, needle):
    _needs("onnxruntime")
    with pytest.raises(ValueError, match=needle):
        load_policy(act_tiny_bundle, "onnxruntime", backend_options=opts)


def test_openvino_threads_pinning_core_type(act_tiny_bundle):
    _needs("openvino")
    opts = {"threads": 1, "pinning": False, "core_type": "any_core", "hyper_threading": False}
    policy = load_policy(act_tiny_bundle, "openvino", backend_options=opts)
    s = policy.sessions["act"].settings
    assert s["INFERENCE_NUM_THREADS"] == 1 and s["ENABLE_CPU_PINNING"] is False
    assert s["SCHEDULING_CORE_TYPE"] == "ANY_CORE"
    for bad, needle in (({"core_type": "fast"}, "core_type"), ({"pinning": "yes"}, "pinning"),
                        ({"spinning": True}, "spinning")):
        with pytest.raises(ValueError, match=needle):
            load_policy(act_tiny_bundle, "openvino", backend_options=bad)
