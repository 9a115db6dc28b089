"""The layout keeps the flow readable: imports point down the chain, policies don't import each other, exporters
know no policy, one registry names everything, files stay small. Checked on the source (AST), not by convention."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from lerobot_edge import registry

PKG = Path(registry.__file__).resolve().parent
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    """'lerobot_edge.a.b' -> path, for every module of the package."""
    out = {}
    for p in PKG.rglob("*.py"):
        parts = p.relative_to(PKG.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return out


def _imports(name: str, path: Path) -> set[str]:
    """Absolute names of the lerobot_edge modules `name` imports (relative imports resolved), lazy ones too."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.update(f"{base}.{a.name}" for a in node.names)
            found.add(base)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m == "lerobot_edge" or m.startswith("lerobot_edge.")}


MODULES = _modules()
IMPORTS = {m: _imports(m, p) for m, p in MODULES.items()}


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _violations(source_prefix: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(f"{m} imports {i}" for m, imps in IMPORTS.items() if _under(m, source_prefix)
                  for i in imps if any(_under(i, f) for f in forbidden))


def test_policies_do_not_import_each_other():
    families = sorted({m.split(".")[2] for m in MODULES if m.startswith("lerobot_edge.policies.")
                       and len(m.split(".")) > 3} - {"common"})
    bad = []
    for fam in families:
        others = tuple(f"lerobot_edge.policies.{f}" for f in families if f != fam)
        bad += _violations(f"lerobot_edge.policies.{fam}", others)
    bad += _violations("lerobot_edge.policies.common", tuple(f"lerobot_edge.policies.{f}" for f in families))
    assert not bad, "shared code belongs in policies/common/:\n" + "\n".join(bad)


def test_exporters_know_no_policy():
    families = tuple(sorted({f"lerobot_edge.policies.{m.split('.')[2]}" for m in MODULES
                             if m.startswith("lerobot_edge.policies.") and len(m.split(".")) > 3}))
    assert not _violations("lerobot_edge.exporters", families)


@pytest.mark.parametrize("robot_side", ["lerobot_edge.runtime", "lerobot_edge.backends", "lerobot_edge.bundle",
                                        "lerobot_edge.registry", "lerobot_edge.kernels", "lerobot_edge.hub"])
def test_robot_side_never_imports_the_torch_side(robot_side):
    torch_side = ("lerobot_edge.policies", "lerobot_edge.exporters", "lerobot_edge.api", "lerobot_edge.testing",
                  "lerobot_edge.checkpoint", "lerobot_edge.cli")
    bad = _violations(robot_side, torch_side)
    assert not bad, "\n".join(bad)


def test_nothing_imports_the_cli():
    assert not [v for v in _violations("lerobot_edge", ("lerobot_edge.cli",))
                if not v.startswith(("lerobot_edge.cli", "lerobot_edge.__main__"))]


def test_files_stay_small():
    big = {str(p.relative_to(PKG)): n for p in PKG.rglob("*.py") if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not big, f"over {MAX_LINES} lines: {big}"


@pytest.mark.parametrize("name", sorted(registry.POLICIES))
def test_registry_entries_resolve(name):
    """Every entry names real things: its plan module, runtime classes (with typed capabilities), writers."""
    import importlib

    from lerobot_edge.runtime.policy import EdgePolicy

    spec = registry.POLICIES[name]
    assert callable(importlib.import_module(spec.plan).build_plan)
    for kind, ref in spec.runtimes.items():
        cls = registry.runtime_class(kind)
        assert cls is registry.load(ref) and issubclass(cls, EdgePolicy)
        assert cls.noise_kind in (None, "normal", "uniform") and isinstance(cls.takes_task, bool)
    for ref in [*([spec.tiny] if spec.tiny else []), *spec.bench.values()]:
        assert callable(registry.load(ref))


def test_one_table_for_targets():
    for t in registry.TARGETS.values():
        assert t.backend in registry.BACKENDS and set(t.precisions) <= set(registry.PRECISIONS)
        assert registry.default_backend(t.name) == t.backend
        if t.validate_with:
            assert t.validate_with in registry.BACKENDS
    assert registry.default_backend("unknown") == "onnxruntime"
    assert registry.backend_file_sets("openvino") == ("common", "openvino", "onnx")


def test_old_dropin_name_still_imports_with_a_deprecation_warning():
    import subprocess
    import sys

    code = ("import warnings\nwith warnings.catch_warnings(record=True) as w:\n    warnings.simplefilter('always')\n"
            "    from lerobot_edge.robots import LeRobotPolicy\n"
            "from lerobot_edge.integrations.lerobot import LeRobotPolicy as New\n"
            "assert LeRobotPolicy is New and any(issubclass(x.category, DeprecationWarning) for x in w)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
