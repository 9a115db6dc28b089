"""Fitting into LeRobot code users already run (needs the `[robots]` extra: torch and lerobot, lazily)."""

from .lerobot_policy import LeRobotPolicy

__all__ = ["LeRobotPolicy"]
