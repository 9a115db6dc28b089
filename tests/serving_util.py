"""Real servers on 127.0.0.1 for the serving tests: `lerobot-edge serve` in its own interpreter (the
.venv-serve env of `make serve-env`: PyTriton pins numpy<2), started and stopped by the test that uses it.

SERVE_PYTHON=/path/to/python overrides the interpreter; the tests skip with the reason when none has PyTriton.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def serve_python() -> str | None:
    """An interpreter that imports pytriton, or None."""
    candidates = [os.environ.get("SERVE_PYTHON"), str(ROOT / ".venv-serve" / "bin" / "python"), sys.executable]
    for exe in candidates:
        if exe and Path(exe).exists():
            r = subprocess.run([exe, "-c", "import pytriton.triton"], capture_output=True, timeout=60)
            if r.returncode == 0:
                return exe
    return None


def require_serve_python() -> str:
    exe = serve_python()
    if exe is None:
        pytest.skip("no interpreter with PyTriton: `make serve-env` builds .venv-serve (or set SERVE_PYTHON)")
    pytest.importorskip("tritonclient.grpc", reason="tritonclient[grpc] is not installed in this env")
    return exe


def free_port_triplet() -> int:
    """A port P with P-1, P, P+1 free on 127.0.0.1 (Triton's HTTP, gRPC and metrics ports)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            p = s.getsockname()[1]
        if 1025 < p < 65000 and all(_free(q) for q in (p - 1, p, p + 1)):
            return p
    raise RuntimeError("no three consecutive free ports on 127.0.0.1")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


class Server:
    """`lerobot-edge serve BUNDLE` as a subprocess; start() waits until its model is ready."""

    def __init__(self, bundle: Path, name: str, *args: str, port: int | None = None, protocol: str = "triton",
                 python: str | None = None, log: Path | None = None):
        self.bundle, self.name, self.args = Path(bundle), name, list(args)
        self.protocol = protocol
        self.port = port or free_port_triplet()
        self.python = python or require_serve_python()
        self.log = log or Path(os.environ.get("TMPDIR", "/tmp")) / f"lerobot-edge-serve-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"grpc://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0) -> "Server":
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        cmd = [self.python, "-m", "lerobot_edge", "serve", str(self.bundle), "--port", str(self.port),
               "--protocol", self.protocol, *self.args]
        if self.protocol == "triton":
            cmd += ["--name", self.name]
        self.proc = subprocess.Popen(cmd, stdout=open(self.log, "w"), stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            if "serving " in self.log.read_text():
                return self
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"the server was not ready within {timeout:g} s:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the server and what it started (tritonserver, PyTriton's workers): a crash."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM (a clean shutdown); SIGKILL after `timeout`. -> the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(30)
        try:   # PyTriton's helpers, should any outlive a crash
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        return self.proc.returncode

    def __enter__(self) -> "Server":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
