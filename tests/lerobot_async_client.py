"""Runs inside the LeRobot 0.4.4 venv (see tests/test_serve_lerobot.py): LeRobot's own, unmodified
`RobotClient` (lerobot.async_inference.robot_client) drives a simulated robot (a LeRobot robot plugin defined
here) against the server at SERVER; then LeRobot's own `PolicyServer` (policy_server.py) computes, in this
process, the chunk for every observation the server answered, from CHECKPOINT.

The client is observed, not changed: its gRPC stub's GetActions and its send_observation are wrapped to
record what crosses the wire.

usage: python lerobot_async_client.py SERVER CHECKPOINT CHUNKS  -> prints one JSON line
"""

import json
import pickle  # nosec: the recorded messages of this test
import sys
import threading
import time
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import torch
from lerobot.async_inference.configs import PolicyServerConfig, RobotClientConfig
from lerobot.async_inference.policy_server import PolicyServer
from lerobot.async_inference.robot_client import RobotClient
from lerobot.configs.policies import PreTrainedConfig
from lerobot.robots.config import RobotConfig
from lerobot.robots.robot import Robot
from lerobot.transport import services_pb2

SERVER, CHECKPOINT, CHUNKS = sys.argv[1], sys.argv[2], int(sys.argv[3])
CFG = PreTrainedConfig.from_pretrained(CHECKPOINT)
(CAM_KEY, CAM), = CFG.image_features.items()
STATE_DIM = CFG.robot_state_feature.shape[0]


@RobotConfig.register_subclass("edge_sim")
@dataclass
class EdgeSimConfig(RobotConfig):
    pass


class EdgeSim(Robot):
    """Joints j0..jN (floats) and one camera: each observation's joints move by 2 (so LeRobot's similarity
    filter never drops one) and its frame is seeded by its index."""

    config_class, name = EdgeSimConfig, "edge_sim"

    def __init__(self, config):
        super().__init__(config)
        self.count, self.sent, self.connected = 0, [], False

    @property
    def observation_features(self):
        c, h, w = CAM.shape
        return {**{f"j{i}.pos": float for i in range(STATE_DIM)}, CAM_KEY.removeprefix("observation.images."): (h, w, c)}

    @property
    def action_features(self):
        return {f"a{i}.pos": float for i in range(CFG.action_feature.shape[0])}

    is_connected = property(lambda self: self.connected)
    is_calibrated = property(lambda self: True)

    def connect(self, calibrate=True):
        self.connected = True

    def calibrate(self):
        pass

    def configure(self):
        pass

    def disconnect(self):
        self.connected = False

    def get_observation(self):
        c, h, w = CAM.shape
        rng = np.random.default_rng(self.count)
        obs = {f"j{i}.pos": float(2.0 * self.count + 0.1 * i) for i in range(STATE_DIM)}
        obs[CAM_KEY.removeprefix("observation.images.")] = rng.integers(0, 256, (h, w, c), dtype=np.uint8)
        self.count += 1
        return obs

    def send_action(self, action):
        self.sent.append(action)
        return action


client = RobotClient(RobotClientConfig(policy_type="act", pretrained_name_or_path=CHECKPOINT, robot=EdgeSimConfig(),
                                       actions_per_chunk=CFG.chunk_size - 2, server_address=SERVER, fps=30,
                                       chunk_size_threshold=0.5, aggregate_fn_name="weighted_average"))
sent_obs, chunks = {}, []
send, get = client.send_observation, client.stub.GetActions


def tap_send(obs):
    sent_obs[obs.get_timestamp()] = pickle.loads(pickle.dumps(obs))
    return send(obs)


def tap_get(request, *a, **k):
    reply = get(request, *a, **k)
    if len(reply.data):
        chunks.append(reply.data)
    return reply


client.send_observation, client.stub.GetActions = tap_send, tap_get
assert client.start(), "the client could not connect"
threads = [threading.Thread(target=client.receive_actions, daemon=True),
           threading.Thread(target=client.control_loop, kwargs={"task": ""}, daemon=True)]
for t in threads:
    t.start()
deadline = time.monotonic() + 90
while len(chunks) < CHUNKS and time.monotonic() < deadline:
    time.sleep(0.05)
client.stop()
for t in threads:
    t.join(10)

# LeRobot's own policy server, in process, on the observations our server answered
reference = PolicyServer(PolicyServerConfig(host="127.0.0.1", port=1, fps=30))
ctx = SimpleNamespace(peer=lambda: "reference")
reference.Ready(services_pb2.Empty(), ctx)
reference.SendPolicyInstructions(services_pb2.PolicySetup(data=pickle.dumps(client.policy_config)), ctx)
worst, same_times, checked = 0.0, True, 0
for data in chunks:
    got = pickle.loads(data)  # nosec
    obs = sent_obs[got[0].get_timestamp()]
    want = reference._predict_action_chunk(obs)
    assert len(got) == len(want) and all(isinstance(a.get_action(), torch.Tensor) for a in got)
    same_times &= all(a.get_timestamp() == b.get_timestamp() and a.get_timestep() == b.get_timestep()
                      for a, b in zip(got, want))
    worst = max(worst, max(float((a.get_action() - b.get_action()).abs().max()) for a, b in zip(got, want)))
    checked += 1
print(json.dumps({"chunks": checked, "actions_sent": len(client.robot.sent), "max_abs_diff": worst,
                  "same_timestamps": bool(same_times), "dtype": str(pickle.loads(chunks[0])[0].get_action().dtype)
                  if chunks else None}))
