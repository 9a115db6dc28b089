"""The on-robot loop: fixed-rate control with sync or async inference (numpy + threads; no torch)."""

from .loop import ControlLoop, LoopError
from .robot import Robot, SimRobot

__all__ = ["ControlLoop", "LoopError", "Robot", "SimRobot"]
