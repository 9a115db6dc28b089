"""load_policy: bundle (directory or Hub repo id) + backend -> EdgePolicy. numpy + one backend, no torch."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any, Mapping

from ..backends import get_backend
from ..bundle import CHECKSUMS, MANIFEST, Bundle
from ..errors import BundleError, ValidationError
from ..registry import backend_file_sets, default_backend, runtime_class
from .policy import EdgePolicy


def _local_or_hub(bundle: str | Path, revision: str | None, backend: str | None) -> Path:
    p = Path(bundle).expanduser()
    if p.is_dir():
        return p
    if not re.fullmatch(r"[\w.\-]+/[\w.\-]+", str(bundle)):
        raise BundleError(f"{bundle}: no such bundle directory, and not a Hub repo id 'user/name'")
    from ..hub import hub_download
    from ..paths import hub_bundle_dir

    local = hub_bundle_dir(str(bundle), revision)
    # manifest first, to learn the file sets; then only what the chosen backend needs
    hub_download(str(bundle), revision, [MANIFEST, CHECKSUMS], local_dir=local)
    manifest = Bundle.open(local, verify=False).manifest
    files = [f for s in backend_file_sets(backend or default_backend(manifest["target"]))
             for f in manifest["files"].get(s, [])]
    return hub_download(str(bundle), revision, [MANIFEST, CHECKSUMS, "README.md", *files], local_dir=local)


def load_policy(bundle: str | Path, backend: str | None = None, *, revision: str | None = None,
                expected_sha256: str | None = None, backend_options: Mapping[str, Any] | None = None,
                num_inference_steps: int | None = None, n_action_steps: int | None = None,
                temporal_ensemble_coeff: float | None = None, rtc: str | None = None,
                rtc_options: Mapping[str, Any] | None = None, seed: int | None = None,
                allow_unvalidated: bool = False) -> EdgePolicy:
    """Load a bundle with one backend and return a policy with LeRobot's interface.

    backend: "onnxruntime" | "openvino" | "tensorrt"; None picks the bundle's target's backend.
    Checksums of the files that backend needs are verified; a bundle whose validation failed or was skipped
    loads only with allow_unvalidated=True.
    """
    path = _local_or_hub(bundle, revision, backend)
    head = Bundle.open(path, verify=False)
    name = backend or default_backend(head.manifest["target"])
    backend_cls = get_backend(name)
    options = backend_cls.check_options(backend_options or {})
    b = Bundle.open(path, name, expected_sha256=expected_sha256)
    passed = b.manifest["validation"].get("passed")
    if passed is not True:
        what = "failed" if passed is False else "was skipped"
        if not allow_unvalidated:
            raise ValidationError(f"{path}: export validation {what}; load with allow_unvalidated=True to run it "
                                  "anyway", report=b.manifest["validation"])
        warnings.warn(f"{path}: running a bundle whose validation {what}", stacklevel=2)
    runner = backend_cls()
    overrides = {"num_inference_steps": num_inference_steps, "n_action_steps": n_action_steps,
                 "temporal_ensemble_coeff": temporal_ensemble_coeff, "rtc": rtc, "rtc_options": rtc_options,
                 "seed": seed}
    cls = runtime_class(b.manifest["runtime"]["kind"])
    # graphs this load will never call stay unloaded (e.g. pi0's RTC "exact" graph unless rtc="exact")
    skip = set(cls.skip_graphs(b.manifest, overrides))
    stray = sorted(set(options.get("graph_options") or {}) - set(b.graphs))
    if stray:
        raise ValueError(f"backend_options graph_options names graph(s) {stray} that this bundle has not "
                         f"(graphs: {sorted(b.graphs)})")
    sessions = {g.name: runner.load(g, b, backend_cls.graph_options(options, g.name))
                for g in b.graphs.values() if g.name not in skip}
    if not cls.stochastic:
        overrides.pop("seed")  # a policy that draws nothing: a seed is harmless
    return cls(b, name, sessions, overrides)
