"""Every LeRobot reference cache key covers every source its scripts run: the scripts/lerobot_reference*.py
scripts, the modules they import (scripts/reference_common.py, ...) and the lerobot_edge.testing writers, so an
edit to any of them makes `make parity-ref*` regenerate the references instead of reusing stale ones."""

from __future__ import annotations

import ast
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REPO

SCRIPTS = REPO / "scripts"
# make variable whose files a key hashes -> the reference scripts its target runs
MAKE_KEYS = {
    "PARITY_MORE_SOURCES": ("mk/parity_more.mk", ["lerobot_reference_sac.py", "lerobot_reference_tdmpc.py"]),
    "PARITY_VQBET_SOURCES": ("mk/parity_vqbet.mk", ["lerobot_reference_vqbet.py"]),
    "PARITY_GROOT_SOURCES": ("mk/parity_groot.mk", ["lerobot_reference_groot.py"]),
    "PARITY_GA_SOURCES": ("mk/parity_gaussian_actor.mk", ["lerobot_reference_gaussian_actor.py"]),
    "PARITY06_SOURCES": ("mk/parity06.mk", ["lerobot_reference_pi.py"]),
    "SMOLVLA_SOURCES": ("mk/smolvla.mk", ["lerobot_reference_smolvla.py"]),
}
CACHE_SH_SCRIPTS = ["lerobot_reference.py", "lerobot_reference_diffusion.py"]  # scripts/reference_cache.sh's key


def _module_file(name: str) -> Path | None:
    """The repo file of an absolute module name: scripts/<name>.py, or a lerobot_edge module (not a package)."""
    if "." not in name and (SCRIPTS / f"{name}.py").is_file():
        return SCRIPTS / f"{name}.py"
    if name.split(".")[0] == "lerobot_edge":
        f = REPO.joinpath(*name.split(".")).with_suffix(".py")
        return f if f.is_file() else None
    return None


def _imports(path: Path) -> set[Path]:
    """Repo files path imports directly. A script's imports count wherever they are (scripts import lazily); of
    a lerobot_edge module only the top-level ones (its functions' lazy imports serve callers other than the
    reference scripts: e.g. testing.checkpoints.pi's of lerobot_edge.policies)."""
    tree = ast.parse(path.read_text())
    nodes = ast.walk(tree) if path.parent == SCRIPTS else iter(tree.body)
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names = [base] + [f"{base}.{a.name}" for a in node.names]  # `from pkg import module`
        else:
            continue
        found.update(f for f in map(_module_file, names) if f is not None)
    return found


def sources(*scripts: str) -> set[str]:
    """The scripts and, transitively, every repo module they import, as repo-relative paths."""
    todo, seen = [SCRIPTS / s for s in scripts], set()
    while todo:
        f = todo.pop()
        if f not in seen:
            seen.add(f)
            todo.extend(_imports(f))
    return {str(f.relative_to(REPO)) for f in seen}


def _make_var(name: str) -> list[str]:
    r = subprocess.run(["make", "-s", "--no-print-directory", "-C", str(REPO), "--eval", "print-%: ; @echo $($*)",
                        f"print-{name}"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def test_the_import_walk_sees_the_shared_modules():
    assert {"scripts/reference_common.py", "scripts/lerobot_reference_sac.py"} <= sources(
        "lerobot_reference_gaussian_actor.py")
    assert {"scripts/reference_vla.py", "scripts/reference_common.py", "lerobot_edge/testing/checkpoints/pi.py",
            "lerobot_edge/testing/checkpoints/layout.py"} <= sources("lerobot_reference_pi.py")


def test_every_reference_script_has_a_key():
    keyed = set(CACHE_SH_SCRIPTS).union(*(s for _, s in MAKE_KEYS.values()))
    assert {p.name for p in SCRIPTS.glob("lerobot_reference*.py")} == keyed


def test_package_inits_on_the_import_path_import_nothing():
    """The walk skips package __init__ files: they must stay import-free (a docstring, PEP 562 lazy getattr)."""
    for init in [REPO / "lerobot_edge" / "__init__.py", *(REPO / "lerobot_edge" / "testing").rglob("__init__.py")]:
        top = [n for n in ast.parse(init.read_text()).body if isinstance(n, (ast.Import, ast.ImportFrom))]
        assert all(isinstance(n, ast.ImportFrom) and n.module == "__future__" for n in top), init


@pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")
@pytest.mark.parametrize("var", MAKE_KEYS)
def test_make_key_covers_the_sources(var):
    mk, scripts = MAKE_KEYS[var]
    listed = _make_var(var)
    assert f"cat $({var})" in (REPO / mk).read_text(), f"{mk}: the key must hash $({var})"
    assert all((REPO / f).is_file() for f in listed), listed
    missing = sources(*scripts) - set(listed)
    assert not missing, f"{mk}: {var} must list {sorted(missing)}"


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="needs sha256sum")
def test_reference_cache_sh_key_changes_with_every_source(tmp_path):
    files = sorted(sources(*CACHE_SH_SCRIPTS))
    for f in files + ["scripts/reference_cache.sh", "mk/parity-lerobot-0.4.4.constraints.txt"]:
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / f, tmp_path / f)

    def key() -> str:
        r = subprocess.run(["sh", str(tmp_path / "scripts/reference_cache.sh")], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()

    base = key()
    for f in files:
        original = (tmp_path / f).read_text()
        (tmp_path / f).write_text(original + "\n# edited\n")
        assert key() != base, f"scripts/reference_cache.sh's key ignores {f}"
        (tmp_path / f).write_text(original)
    assert key() == base
