"""The on-robot control loop: fixed-rate control, async inference with chunk merging (RTC for flow-matching
policies), latency tracking, robots and simulators. numpy + threads; no torch. LeRobot robots and gymnasium
envs are imported lazily, only when asked for.

    from lerobot_edge.runtime.control import run_policy
    report = run_policy("act-edge/", robot="sim", fps=50, duration=10, mode="async")
"""

from .adapters import GymEnvRobot, LeRobotRobot, gym_observation, make_robot
from .chunks import MERGES, ChunkBuffer, LatencyTracker, delay_steps
from .clock import ControlLoop, supports_rtc
from .robots import CAPTURE_TIME, FRAME_INDEX, Robot, SimRobot
from .runner import format_summary, run_policy
from .safety import ActionLimits
from .timing import TimingRecord

__all__ = ["ActionLimits", "CAPTURE_TIME", "ChunkBuffer", "ControlLoop", "FRAME_INDEX", "GymEnvRobot",
           "LatencyTracker", "LeRobotRobot", "MERGES", "Robot", "SimRobot", "TimingRecord", "delay_steps",
           "format_summary", "gym_observation", "make_robot", "run_policy", "supports_rtc"]
