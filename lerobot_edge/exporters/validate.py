"""The accuracy gate of an export, in the manner of optimum's `validate_model_outputs`: every graph of a bundle
on a backend against our PyTorch module (TorchSession) on seeded inputs, several trials, names -> shapes ->
values per output against its named tolerance, every failure reported at once; then the plan's end-to-end
check (a sampled chunk) where the policy has a host loop.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable

import numpy as np

from ..accuracy import compare
from ..bundle import Bundle, BundleWriter, GraphSpec
from ..checkpoint import load_checkpoint
from ..errors import ValidationError
from ..progress import Progress, ProgressLike, as_progress
from ..registry import default_backend
from .chunk_check import run_chunk_check
from .torch_session import TorchSession, export_options_of

log = logging.getLogger(__name__)
VALIDATION_TRIALS = 3
VALIDATION_SEED = 20240601
RECORDED_TRIALS = 4   # held-out recorded feeds per graph an int8 bundle with calibration data is also gated on


def validate_graphs(plan, specs: list[GraphSpec], bundle: Bundle, backend_name: str, options: dict,
                    precision: str, accept: bool, writer: BundleWriter | None = None,
                    progress: Progress | None = None, recorded: Callable[[str], list] | None = None) -> dict:
    """Run every graph of `bundle` with `backend_name` against the plan's torch modules on seeded inputs; the
    manifest's `validation` section. With a writer (export), the first trial's inputs and fp32 outputs are
    stored for `selftest`. `recorded` (graph name -> held-out recorded batch-1 feeds; int8 with calibration
    data): each graph also on up to RECORDED_TRIALS of them, reported under `recorded`. Progress: one unit per
    trial of each graph, one for the end-to-end chunk."""
    from ..backends import get_backend

    backend = get_backend(backend_name)
    reports, held, rng = [], [], np.random.default_rng(VALIDATION_SEED)
    total = len(specs) * VALIDATION_TRIALS + (plan.end_to_end is not None)
    with as_progress(progress).task(f"validating {len(specs)} graph(s) with {backend_name} against PyTorch "
                                    f"({VALIDATION_TRIALS} seeded trials)", total) as advance:
        for g, spec in zip(plan.graphs, specs):
            t0 = time.perf_counter()
            inputs = [g.sample_inputs(rng, 2 if k == 0 else 1) for k in range(VALIDATION_TRIALS)]
            reference, session = TorchSession(g), backend().load(spec, bundle, options)
            expected, actual = [], []
            for x in inputs:
                expected.append(reference.run(x))
                actual.append(session.run(x))
                advance()
            if writer is not None:
                writer.write_validation(g.name, {**{f"input.{k}": v for k, v in inputs[0].items()},
                                                 **{f"output.{k}": v for k, v in expected[0].items()}})
            rep = compare(g.name, backend_name, expected, actual, spec.tolerance)
            rep.seconds = time.perf_counter() - t0
            reports.append(rep)
            feeds = [{i.name: f[i.name] for i in spec.inputs} for f in (recorded(g.name) if recorded else [])]
            if feeds:   # the same session on observations the calibration never set ranges on
                feeds = feeds[:RECORDED_TRIALS]
                held.append(compare(g.name, backend_name, [reference.run(x) for x in feeds],
                                    [session.run(x) for x in feeds], spec.tolerance))
        if plan.end_to_end is not None:  # a sampled chunk: every graph + the host loop
            t0 = time.perf_counter()
            rep = run_chunk_check(plan.end_to_end, plan.graphs, bundle, backend_name, options, precision)
            rep.seconds = time.perf_counter() - t0
            reports.append(rep)
            advance()
    return _section(reports, held, accept, backend_name, precision)


def _section(reports: list, held: list, accept: bool, backend_name: str, precision: str) -> dict:
    """The manifest's `validation` section; `recorded` (held-out recorded feeds) only where there were any."""
    passed = all(r.passed for r in (*reports, *held))
    lines = [line for r in reports for line in r.lines()]
    lines += [line.replace(f" {r.graph}.", f" {r.graph}@recorded.", 1) for r in held for line in r.lines()]
    return {"passed": passed, "accepted_below_tolerance": bool(accept and not passed), "backend": backend_name,
            "precision": precision, "seed": VALIDATION_SEED, "graphs": {r.graph: r.to_json() for r in reports},
            **({"recorded": {r.graph: r.to_json() for r in held}} if held else {}), "lines": lines}


def validate_bundle(bundle: str | Path, against: str | Path, *, backend: str | None = None,
                    policy_type: str | None = None, revision: str | None = None,
                    backend_options: dict | None = None, progress: ProgressLike = None) -> dict:
    """Re-run the export validation of `bundle` against the checkpoint `against` (local dir or Hub id).

    Returns the validation report (as stored in manifests); raises ValidationError when a graph fails.
    A checkpoint whose weights differ from the bundle's source is reported in the result ("same_weights").
    """
    from ..policies import build_plan

    progress = as_progress(progress or log.info)
    b = Bundle.open(bundle)
    name = backend or default_backend(b.manifest["target"])
    progress.step(f"reading checkpoint {against}")
    ckpt = load_checkpoint(against, policy_type=policy_type or b.manifest["policy"]["type"], revision=revision)
    plan = build_plan(ckpt, **export_options_of(b.manifest))   # the graphs it was exported with
    specs = [b.graphs[g.name] for g in plan.graphs]
    report = validate_graphs(plan, specs, b, name, dict(backend_options or {}), b.manifest["precision"], False,
                             progress=progress)
    report["same_weights"] = ckpt.weights_sha256() == b.manifest["source"].get("weights_sha256")
    if not report["passed"]:
        raise ValidationError("validation failed:\n" + "\n".join(report["lines"]), report=report)
    return report
