"""`lerobot-edge selftest BUNDLE --backend B`: on the user's device (a Jetson, say), build the engine if needed,
run the validation inputs stored in the bundle and compare with the fp32 PyTorch outputs stored at export,
with the tolerance of the bundle's precision; report errors and latencies. numpy + the backend only."""

from __future__ import annotations

import time
from typing import Any, Mapping

import numpy as np

from .accuracy import compare
from .backends import get_backend
from .bundle import Bundle
from .errors import BundleError, ValidationError
from .progress import ProgressLike, as_progress
from .registry import default_backend


def selftest(bundle: str, backend: str | None = None, *, backend_options: Mapping[str, Any] | None = None,
             iterations: int = 20, progress: ProgressLike = None) -> dict:
    """Run every graph on its stored inputs; raise ValidationError (report attached) when one fails. Progress:
    a phase per graph loaded (a TensorRT engine build reports its own phases), a count of timed runs."""
    head = Bundle.open(bundle, verify=False)
    name = backend or default_backend(head.manifest["target"])
    cls = get_backend(name)
    options = cls.check_options(backend_options or {})
    b = Bundle.open(bundle, name)
    progress = as_progress(progress)
    runner, graphs, lines = cls(progress), {}, []
    for spec in b.graphs.values():
        data = b.validation_data(spec.name)
        if data is None:
            raise BundleError(f"{bundle}: no validation/{spec.name}.npz to self-test with")
        inputs = {k[len("input."):]: v for k, v in data.items() if k.startswith("input.")}
        expected = {k[len("output."):]: v for k, v in data.items() if k.startswith("output.")}
        progress.step(f"loading graph '{spec.name}' with {name}")
        t0 = time.perf_counter()
        session = runner.load(spec, b, cls.graph_options(options, spec.name))
        load_s = time.perf_counter() - t0
        actual = session.run(inputs)
        times = []
        for _ in progress.track(range(iterations), f"timing graph '{spec.name}' ({iterations} runs)"):
            t0 = time.perf_counter()
            session.run(inputs)
            times.append(time.perf_counter() - t0)
        rep = compare(spec.name, name, [expected], [actual], spec.tolerance)
        graphs[spec.name] = {**rep.to_json(), "load_s": round(load_s, 3),
                             "p50_ms": round(float(np.median(times)) * 1e3, 3),
                             "p99_ms": round(float(np.percentile(times, 99)) * 1e3, 3)}
        lines += [f"{line}  [{graphs[spec.name]['p50_ms']:.2f} ms p50, load {load_s:.1f}s]" for line in rep.lines()]
    report = {"bundle": str(bundle), "backend": name, "precision": b.manifest["precision"],
              "passed": all(g["passed"] for g in graphs.values()), "graphs": graphs, "lines": lines}
    if not report["passed"]:
        raise ValidationError("selftest failed:\n" + "\n".join(lines), report=report)
    return report
