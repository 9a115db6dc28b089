"""export(): LeRobot checkpoint -> validated bundle. The CLI's `export` calls exactly this."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import logging
import time
from pathlib import Path
from typing import Callable

import numpy as np

from . import __version__
from .bundle import Bundle, BundleWriter, GraphSpec
from .checkpoint import load_checkpoint
from .errors import ValidationError
from .exporters.targets import get_target
from .paths import default_output_dir

log = logging.getLogger(__name__)
Progress = Callable[[str], None]
VALIDATION_TRIALS = 3
VALIDATION_SEED = 20240601


def export(source: str | Path, output: str | Path | None = None, target: str = "onnx", *, policy_type: str | None = None,
           revision: str | None = None, precision: str = "fp32", opset: int = 18, validate: bool = True,
           accept_accuracy: bool = False, tokenizer: str | None = None, vlm: str | None = None,
           base: str | None = None, rename_map: dict | None = None, calibration: str | None = None,
           rtc_exact: bool = False, fuse_loop: bool = False, overwrite: bool = False,
           progress: Progress | None = None) -> Path:
    """Export a LeRobot checkpoint (local dir or Hub repo id) to a bundle directory `output`.

    Every graph is validated against our PyTorch module on seeded random inputs with the target's backend;
    the results go into the manifest. A failed gate raises ValidationError after the bundle is written
    (unless accept_accuracy=True), so the failing bundle can be inspected but will not load by default.
    """
    output = default_output_dir(source, target, precision) if output is None else output
    say = progress or (lambda msg: log.info(msg))
    tgt = get_target(target)
    if precision not in tgt.precisions:
        raise ValueError(f"--precision {precision!r} is not supported by --target {target} "
                         f"(supported: {', '.join(tgt.precisions)})")
    if opset < 18:
        raise ValueError(f"--opset {opset}: lerobot-edge needs opset >= 18 (the dynamo exporter writes files "
                         "ONNX Runtime rejects at 17)")
    unsupported = {k: v for k, v in dict(calibration=calibration).items() if v}
    if unsupported:
        raise ValueError(f"export options {sorted(unsupported)} are not supported for this checkpoint/target yet")

    from .policies import build_plan  # torch from here on

    t0 = time.perf_counter()
    say(f"reading checkpoint {source}")
    ckpt = load_checkpoint(source, policy_type=policy_type, revision=revision, base=base)
    if ckpt.base_path is not None:
        say(f"merging the LoRA adapter into {ckpt.base_path}")
    say(f"building {ckpt.policy_type} modules and loading weights (strict)")
    plan = build_plan(ckpt, fuse_loop=fuse_loop, rtc_exact=rtc_exact, vlm=vlm)  # a policy that takes no such option refuses it
    writer = BundleWriter(output, overwrite=overwrite)
    try:
        from .exporters.tokenizer import add_tokenizer
        add_tokenizer(writer, plan, tokenizer)  # VLAs: tokenizer.json into the bundle; others refuse tokenizer=
        for rel, write in getattr(plan, "extra_files", {}).items():
            say(f"writing {rel}")
            write(writer.abspath(rel))
            writer.add(rel, "common")
        specs = _export_graphs(plan, writer, tgt, precision, opset, calibration, say)
        writer.write_stats(plan.stats)
        manifest = _manifest(ckpt, plan, specs, target, precision, opset)
        manifest["rename_map"] = _rename_map(ckpt, plan, rename_map)
        if validate:
            backend = tgt.validate_with or tgt.backend
            say(f"validating {len(specs)} graph(s) with {backend} against PyTorch ({VALIDATION_TRIALS} seeded trials)")
            staged = Bundle(writer.stage, {**manifest, "files": writer.files})
            if tgt.validate_with:  # e.g. TensorRT: here the fp32 ONNX is checked; the engine on the device
                checked = [dataclasses.replace(sp, tolerance=g.tolerance) for sp, g in zip(specs, plan.graphs)]
                manifest["validation"] = _validate(plan, checked, staged, backend, {}, "fp32", accept_accuracy,
                                                   writer)
            else:
                manifest["validation"] = _validate(plan, specs, staged, backend, {}, precision, accept_accuracy,
                                                   writer)
            if tgt.validate_with:
                manifest["validation"]["engine"] = f"not built here: run `lerobot-edge selftest BUNDLE --backend " \
                                                   f"{tgt.backend}` on the device"
        path = writer.finish(manifest)
    except BaseException:
        writer.abort()
        raise
    log.info("wrote %s in %.1fs", path, time.perf_counter() - t0)
    val = manifest["validation"]
    if val.get("passed") is False and not accept_accuracy:
        raise ValidationError("validation failed:\n" + "\n".join(val.get("lines", [])), report=val)
    return path


def _export_graphs(plan, writer: BundleWriter, tgt, precision: str, opset: int, calibration, say) -> list[GraphSpec]:
    """Each graph of the plan to ONNX, then to the target's artefacts; tolerances set for the precision."""
    from .exporters.onnx import export_onnx
    from .exporters.targets import tolerance_for

    specs = []
    for g in plan.graphs:
        say(f"tracing graph '{g.name}' to ONNX (opset {opset})")
        example = g.sample_inputs(np.random.default_rng(0), 2)  # batch 2 keeps the axis dynamic
        module = g.module if g.export_module is None else g.export_module(example)
        files = export_onnx(module, example, g.inputs, g.outputs, writer.abspath(f"{g.name}.onnx"), opset)
        del module  # a traced copy may hold its own graph; free it before the next graph
        for f in files:
            writer.add(f, "onnx")
        spec = GraphSpec(g.name, files[0], tuple(g.inputs), tuple(g.outputs), tolerance_for(precision, g.tolerance),
                         {}, _flops(g))
        if tgt.convert:
            say(f"converting graph '{g.name}' for {tgt.name} ({precision})")
            spec = tgt.convert(spec, writer, precision, {"calibration": calibration, "sample_inputs": g.sample_inputs})
        specs.append(spec)
    return specs


def _flops(g) -> int | None:
    """FLOPs of one batch-1 call, counted once at export (for the bench's roofline)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    x = g.sample_inputs(np.random.default_rng(1), 1)
    try:
        # FlopCounterMode fails under no_grad in torch 2.13; gradients are not kept anyway
        with FlopCounterMode(display=False) as counter:
            g.module(*[torch.from_numpy(x[i.name]) for i in g.inputs])
        return int(counter.get_total_flops())
    except Exception:  # counting is informative only
        return None


def _torch_outputs(g, x: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    import torch

    with torch.no_grad():
        out = g.module(*[torch.from_numpy(x[i.name]) for i in g.inputs])
    out = out if isinstance(out, (tuple, list)) else (out,)
    return {o.name: t.numpy() for o, t in zip(g.outputs, out)}


def _validate(plan, specs, bundle: Bundle, backend_name: str, options: dict, precision: str, accept: bool,
              writer: BundleWriter | None = None) -> dict:
    """Run every graph of `bundle` with `backend_name` against the plan's torch modules on seeded inputs.
    With a writer (export), the first trial's inputs and fp32 outputs are stored for `selftest`."""
    from .backends import get_backend
    from .accuracy import compare

    backend = get_backend(backend_name)
    reports, rng = [], np.random.default_rng(VALIDATION_SEED)
    for g, spec in zip(plan.graphs, specs):
        t0 = time.perf_counter()
        inputs = [g.sample_inputs(rng, 2 if k == 0 else 1) for k in range(VALIDATION_TRIALS)]
        expected = [_torch_outputs(g, x) for x in inputs]
        if writer is not None:
            writer.write_validation(g.name, {**{f"input.{k}": v for k, v in inputs[0].items()},
                                             **{f"output.{k}": v for k, v in expected[0].items()}})
        session = backend().load(spec, bundle, options)
        actual = [session.run(x) for x in inputs]
        rep = compare(g.name, backend_name, expected, actual, spec.tolerance)
        rep.seconds = time.perf_counter() - t0
        reports.append(rep)
    if getattr(plan, "end_to_end", None) is not None:  # e.g. a sampled chunk: every graph + the host loop
        t0 = time.perf_counter()
        rep = plan.end_to_end(bundle, backend_name, options, precision)
        rep.seconds = time.perf_counter() - t0
        reports.append(rep)
    passed = all(r.passed for r in reports)
    return {"passed": passed, "accepted_below_tolerance": bool(accept and not passed), "backend": backend_name,
            "precision": precision, "seed": VALIDATION_SEED, "graphs": {r.graph: r.to_json() for r in reports},
            "lines": [line for r in reports for line in r.lines()]}


def validate_bundle(bundle: str | Path, against: str | Path, *, backend: str | None = None,
                    policy_type: str | None = None, revision: str | None = None,
                    backend_options: dict | None = None, progress: Progress | None = None) -> dict:
    """Re-run the export validation of `bundle` against the checkpoint `against` (local dir or Hub id).

    Returns the validation report (as stored in manifests); raises ValidationError when a graph fails.
    A checkpoint whose weights differ from the bundle's source is reported in the result ("same_weights").
    """
    from .backends import TARGET_BACKEND
    from .policies import build_plan

    say = progress or (lambda msg: log.info(msg))
    b = Bundle.open(bundle)
    name = backend or TARGET_BACKEND.get(b.manifest["target"], "onnxruntime")
    say(f"reading checkpoint {against}")
    ckpt = load_checkpoint(against, policy_type=policy_type or b.manifest["policy"]["type"], revision=revision)
    plan = build_plan(ckpt, fuse_loop=bool(b.manifest["runtime"].get("fuse_loop")),
                      rtc_exact=bool(b.manifest["runtime"].get("rtc_exact")),  # as it was exported
                      vlm=b.manifest["policy"]["config"].get("vlm_source"))
    specs = [b.graphs[g.name] for g in plan.graphs]
    say(f"validating {len(specs)} graph(s) with {name} against PyTorch ({VALIDATION_TRIALS} seeded trials)")
    report = _validate(plan, specs, b, name, dict(backend_options or {}), b.manifest["precision"], False)
    report["same_weights"] = ckpt.weights_sha256() == b.manifest["source"].get("weights_sha256")
    if not report["passed"]:
        raise ValidationError("validation failed:\n" + "\n".join(report["lines"]), report=report)
    return report


def _rename_map(ckpt, plan, extra: dict | None) -> dict[str, str]:
    """The checkpoint's own rename step plus the user's (robot key -> policy feature key); the runtime applies
    it before checking observations. Targets must be features of the policy."""
    merged = {**ckpt.rename_map, **(extra or {})}
    wanted = set(plan.observations)
    bad = {k: v for k, v in merged.items() if v not in wanted}
    if extra and bad:
        raise ValueError(f"rename_map targets {sorted(bad.values())} are not observation features of this policy "
                         f"(features: {sorted(wanted)})")
    return {k: v for k, v in merged.items() if k != v and v in wanted}


def _manifest(ckpt, plan, specs: list[GraphSpec], target: str, precision: str, opset: int) -> dict:
    return {
        "lerobot_edge_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "policy": {"type": plan.policy_type, "config": plan.policy_config, "legacy_stats": plan.legacy_stats},
        "source": {**{k: v for k, v in ckpt.source.items() if v is not None}, "weights_sha256": ckpt.weights_sha256()},
        "target": target, "precision": precision, "opset": opset,
        "graphs": [s.to_json() for s in specs],
        "observations": plan.observations,
        "cameras": [k for k, o in plan.observations.items() if o["kind"] == "image"],
        "action": plan.action,
        "normalization": plan.normalization,
        "runtime": plan.runtime,
        "noise_shape": plan.noise_shape,
        "validation": {"passed": "skipped"},
    }
