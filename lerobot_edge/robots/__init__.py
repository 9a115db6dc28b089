"""Deprecated name of `lerobot_edge.integrations.lerobot` (the LeRobot drop-in wrapper); kept so existing scripts
keep working."""

import warnings

from ..integrations.lerobot import LeRobotPolicy

warnings.warn("lerobot_edge.robots is deprecated: use `from lerobot_edge.integrations.lerobot import LeRobotPolicy`",
              DeprecationWarning, stacklevel=2)
__all__ = ["LeRobotPolicy"]
