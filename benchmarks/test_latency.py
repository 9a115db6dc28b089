"""pytest-benchmark suite: predict_action_chunk per policy x backend x precision on standard configs.

    make bench                        # or: pytest benchmarks --benchmark-only
    pytest benchmarks --benchmark-json out.json

Each backend is its own benchmark (pytest-benchmark times them one after another); for the interleaved,
per-stage comparison use `lerobot-edge bench`.
"""

from __future__ import annotations

import numpy as np
import pytest

from lerobot_edge import export, load_policy
from lerobot_edge.backends import available_backends
from lerobot_edge.runtime.observations import random_observation

BACKENDS = [b for b in ("onnxruntime", "openvino") if b in available_backends()]
TARGET = {"onnxruntime": "onnx", "openvino": "openvino"}


def _obs(policy, seed=0):
    return random_observation(policy.observation_spec, np.random.default_rng(seed))


@pytest.fixture(scope="session")
def act_aloha_bundles(act_aloha_checkpoint, tmp_path_factory):
    from lerobot_edge.exporters.targets import TARGETS

    out = {}
    for backend in BACKENDS:
        target = TARGET[backend]
        if target in TARGETS:
            out[backend] = export(act_aloha_checkpoint, tmp_path_factory.mktemp(target) / "b", target)
    return out


@pytest.mark.parametrize("backend", ["torch", *BACKENDS])
def test_act_aloha_chunk(benchmark, backend, act_aloha_checkpoint, act_aloha_bundles):
    if backend == "torch":
        from lerobot_edge.bench.torch_session import load_torch_policy

        policy = load_torch_policy(str(act_aloha_bundles["onnxruntime"]), str(act_aloha_checkpoint))
    elif backend in act_aloha_bundles:
        policy = load_policy(act_aloha_bundles[backend], backend)
    else:
        pytest.skip(f"no export target for {backend} in this lerobot-edge")
    obs = _obs(policy)
    benchmark.group = "act-aloha predict_action_chunk"
    benchmark.pedantic(policy.predict_action_chunk, args=(obs,), rounds=20, warmup_rounds=3)
