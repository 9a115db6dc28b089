"""pytest-benchmark suite: predict_action_chunk per policy x backend x precision on the standard configs of
benchmarks/configs.py (random weights in LeRobot's layout).

    make bench                                          # or: pytest benchmarks --benchmark-only
    pytest benchmarks --benchmark-only -k "act_aloha"   # one config
    pytest benchmarks --benchmark-json out.json

Each variant is its own benchmark (pytest-benchmark times them one after another); for the interleaved,
per-stage comparison and the README tables use `lerobot-edge bench` / benchmarks/tables.py.
"""

from __future__ import annotations

import numpy as np
import pytest

import configs
from lerobot_edge import export, load_policy
from lerobot_edge.backends import available_backends
from lerobot_edge.runtime.observations import random_observation

# (backend, export target, precision); eager torch runs our modules on the ONNX bundle's host code
VARIANTS = [("torch", "onnx", "fp32"), ("onnxruntime", "onnx", "fp32"), ("openvino", "openvino", "fp32"),
            ("openvino", "openvino", "bf16")]
ROUNDS = {"diffusion_pusht_ddpm100": 3, "tdmpc_xarm": 5}


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    return lambda name: configs.write(name, root)


@pytest.fixture(scope="session")
def bundles(checkpoints, tmp_path_factory):
    cache: dict[tuple, object] = {}

    def get(name: str, target: str, precision: str):
        if (name, target, precision) not in cache:
            out = tmp_path_factory.mktemp(f"{name}-{target}-{precision}") / "b"
            cache[name, target, precision] = export(checkpoints(name), out, target, precision=precision,
                                                    accept_accuracy=precision != "fp32")
        return cache[name, target, precision]
    return get


@pytest.mark.parametrize("backend,target,precision", VARIANTS, ids=lambda v: str(v))
@pytest.mark.parametrize("config", list(configs.CONFIGS))
def test_chunk(benchmark, config, backend, target, precision, checkpoints, bundles):
    if backend != "torch" and backend not in available_backends():
        pytest.skip(f"{backend} is not installed")
    bundle = bundles(config, target, precision)
    if backend == "torch":
        from lerobot_edge.exporters.torch_session import load_torch_policy

        policy = load_torch_policy(str(bundle), str(checkpoints(config)))
    else:
        policy = load_policy(bundle, backend, allow_unvalidated=True)
    obs = random_observation(policy.observation_spec, np.random.default_rng(0))
    benchmark.group = f"{config} predict_action_chunk"
    benchmark.pedantic(policy.predict_action_chunk, args=(obs,), rounds=ROUNDS.get(config, 20), warmup_rounds=2)
