"""One session type per inference library, all behind `Session.run(inputs, keep=()) -> outputs`."""

from .base import Backend, DeviceTensor, Session, available_backends, check_feed, get_backend

__all__ = ["Backend", "DeviceTensor", "Session", "available_backends", "check_feed", "get_backend"]
