"""The robot side: numpy + one backend. Never imports torch, lerobot, policies/ or exporters/."""

from .loader import load_policy
from .policy import EdgePolicy

__all__ = ["EdgePolicy", "load_policy"]
