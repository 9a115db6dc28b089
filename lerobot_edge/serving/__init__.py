"""Many robots, one inference server: a bundle served by NVIDIA Triton (PyTriton on this machine, or a model
repository for Triton's own container), the robot-side RemotePolicy, and LeRobot's async-inference protocol.

- `serve(bundle, port=...)` (pytriton_server.py, `[serve]` extra): a real Triton server binding the bundle's
  chunk function (handler.py) with dynamic batching.
- `write_model_repository(bundle, repo_dir)` (triton_repo.py): each graph a Triton model on its native
  backend plus a Python-backend model running our numpy runtime around them.
- `RemotePolicy(url, name_or_bundle)` (remote.py, `[remote]` extra: tritonclient[grpc] + numpy).
- `serve_lerobot(bundle, port=...)` (lerobot_async.py): LeRobot's `policy_server` gRPC service for an
  unmodified LeRobot `robot_client`.
The wire contract is protocol.py. Imported lazily: none of these libraries loads until asked for.
"""

from __future__ import annotations

_LAZY = {"RemotePolicy": "remote", "serve": "pytriton_server", "write_model_repository": "triton_repo",
         "serve_lerobot": "lerobot_async", "ChunkService": "handler"}
__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(name)
