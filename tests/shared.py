"""Artefacts built once per test run, also under pytest-xdist (`make test` runs `pytest -n 2`): the first worker
that needs one builds it under a file lock in the run's shared temp directory; the others wait and reuse it.
Shared artefacts are read-only: a test that edits one copies it first."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import pytest
from filelock import FileLock


def shared_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "shared"
    root.mkdir(parents=True, exist_ok=True)
    return root


def shared(name: str, make: Callable[[Path], Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`make(empty dir) -> a path inside it`, run once per test run; -> that path."""
    root = shared_root(tmp_path_factory)
    done = root / f"{name}.done"
    with FileLock(str(root / f"{name}.lock")):
        if not done.is_file():
            d = root / name
            d.mkdir(exist_ok=True)
            done.write_text(str(Path(make(d)).relative_to(root)))
    return root / done.read_text()
