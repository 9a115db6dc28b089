"""The export pipeline: checkpoint -> the policy's ExportPlan -> each graph traced to ONNX and converted for the
target -> validated against PyTorch -> a bundle (manifest, graphs, stats, tokenizer, validation data).

Knows no policy: everything policy-specific comes in the plan (policies/<name>/plan.py, found through
registry.POLICIES); everything target-specific in registry.TARGETS.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import logging
import time
from pathlib import Path

import numpy as np

from .. import __version__
from ..bundle import Bundle, BundleWriter, GraphSpec
from ..checkpoint import load_checkpoint
from ..errors import ValidationError
from ..paths import default_output_dir
from ..progress import Progress, ProgressLike, as_progress
from ..registry import TargetSpec, target_spec
from .validate import validate_graphs

log = logging.getLogger(__name__)
CALIBRATED = ("int8", "fp8")   # precisions whose converters take calibration feeds


def export_bundle(source: str | Path, output: str | Path | None, target: str = "onnx", *, policy_type: str | None = None,
                  revision: str | None = None, precision: str = "fp32", opset: int = 18, validate: bool = True,
                  accept_accuracy: bool = False, tokenizer: str | None = None, base: str | None = None,
                  rename_map: dict | None = None, calibration: str | None = None, overwrite: bool = False,
                  progress: ProgressLike = None, **plan_options) -> Path:
    """`lerobot_edge.export` (see its docstring); `plan_options` go to the policy's build_plan (vlm, rtc_exact,
    fuse_loop, preprocess_in_graph: a policy that takes no such option refuses it)."""
    progress = as_progress(progress or log.info)
    tgt = _check_options(target, precision, opset, calibration)
    output = default_output_dir(source, target, precision) if output is None else output
    writer = BundleWriter(output, overwrite=overwrite)   # an existing output is refused before any slow work
    t0 = time.perf_counter()
    try:
        from ..policies import build_plan  # torch from here on

        progress.step(f"reading checkpoint {source}")
        ckpt = load_checkpoint(source, policy_type=policy_type, revision=revision, base=base)
        if ckpt.base_path is not None:
            progress.step(f"merging the LoRA adapter into {ckpt.base_path}")
        progress.step(f"building {ckpt.policy_type} modules and loading weights (strict)")
        plan = build_plan(ckpt, **plan_options)
        _write_files(plan, writer, tokenizer, progress)
        specs = _trace_graphs(plan, writer, precision, opset, progress)
        writer.write_stats(plan.stats)
        renames = _rename_map(ckpt, plan, rename_map)
        fp32_manifest = {**_manifest(ckpt, plan, specs, "onnx", "fp32", opset), "rename_map": renames}
        samples = _calibration(calibration, plan, writer, fp32_manifest, progress)
        manifest = _convert_and_validate(ckpt, plan, specs, writer, tgt, precision, opset, samples, renames,
                                         validate, accept_accuracy, progress)
        path = writer.finish(manifest)
    except BaseException:
        writer.abort()
        raise
    log.info("wrote %s in %.1fs", path, time.perf_counter() - t0)
    val = manifest["validation"]
    if val.get("passed") is False and not accept_accuracy:
        raise ValidationError("validation failed:\n" + "\n".join(val.get("lines", [])), report=val)
    return path


def _check_options(target: str, precision: str, opset: int, calibration: str | None) -> TargetSpec:
    """Refuse what the target cannot do before any work is done."""
    tgt = target_spec(target)
    if precision not in tgt.precisions:
        why = f": {tgt.refused[precision]}" if precision in tgt.refused else ""
        raise ValueError(f"--precision {precision!r} is not supported by --target {target} "
                         f"(supported: {', '.join(tgt.precisions)}){why}")
    if opset < 18:
        raise ValueError(f"--opset {opset}: lerobot-edge needs opset >= 18 (the dynamo exporter writes files "
                         "ONNX Runtime rejects at 17)")
    if calibration and precision not in CALIBRATED:
        raise ValueError(f"calibration={str(calibration)!r}: only {'/'.join(CALIBRATED)} bundles are calibrated; "
                         f"--precision {precision} uses no calibration data")
    return tgt


def _write_files(plan, writer: BundleWriter, tokenizer: str | None, progress: Progress) -> None:
    """The files beside the graphs: a VLA's tokenizer.json (others refuse tokenizer=), the plan's extra files
    (e.g. pi0's language embedding table, gathered on the host)."""
    from .tokenizer import add_tokenizer

    add_tokenizer(writer, plan, tokenizer)
    for rel, write in plan.extra_files.items():
        progress.step(f"writing {rel}")
        write(writer.abspath(rel))
        writer.add(rel, "common")


def _trace_graphs(plan, writer: BundleWriter, precision: str, opset: int, progress: Progress) -> list[GraphSpec]:
    """Each graph of the plan to an fp32 ONNX file; tolerances set for the precision."""
    from .onnx import export_onnx
    from .targets import tolerance_for

    specs = []
    for g in progress.track(plan.graphs, f"exporting {len(plan.graphs)} graph(s) to ONNX"):
        progress.step(f"tracing graph '{g.name}' to ONNX (opset {opset})")
        example = g.sample_inputs(np.random.default_rng(0), 2)  # batch 2 keeps the axis dynamic
        module = g.module if g.export_module is None else g.export_module(example)
        files = export_onnx(module, example, g.inputs, g.outputs, writer.abspath(f"{g.name}.onnx"), opset)
        del module  # a traced copy may hold its own graph; free it before the next graph
        for f in files:
            writer.add(f, "onnx")
        specs.append(GraphSpec(g.name, files[0], tuple(g.inputs), tuple(g.outputs),
                               tolerance_for(precision, g.tolerance), {}, _flops(g)))
    return specs


def _calibration(source, plan, writer: BundleWriter, manifest: dict, progress: Progress):
    """`calibration` -> the converters' `calibration_samples` callable: the observations run through the
    runtime on the fp32 ONNX graphs (ONNX Runtime CPU), each graph's feeds recorded (exporters/calibration.py)."""
    if not source:
        return None
    from .calibration import calibration_samples

    progress.step(f"calibrating: running the observations of {source} through the fp32 graphs")
    staged = Bundle(writer.stage, {**manifest, "files": writer.files})
    keys = set(plan.observations) | set(manifest.get("rename_map") or {})
    return calibration_samples(source, staged, keys)


def _convert_and_validate(ckpt, plan, specs: list[GraphSpec], writer: BundleWriter, tgt: TargetSpec, precision: str,
                          opset: int, samples, renames: dict, validate: bool, accept: bool, progress: Progress) -> dict:
    """Every graph converted for the target, the bundle validated -> the manifest. A calibrated precision gated
    without accept_accuracy validates with the per-graph fallback (exporters/precision_fallback.py: the graphs
    that fail converted again more conservatively, up to fp32, a bounded number of rounds)."""
    quantization: dict = {}   # per graph: the int8 mode kept (or fp32), the calibration source, the checks
    gated = validate and not accept and precision in tgt.fallback and tgt.convert
    fallback = _fallback(plan, specs, writer, tgt, precision, samples, quantization) if gated else None
    try:
        specs = _convert_graphs(plan, specs, writer, tgt, precision, samples, quantization, progress)
        manifest = _manifest(ckpt, plan, specs, tgt.name, precision, opset)
        if quantization or fallback is not None:   # the live record: the backends read it (a graph sent to fp32)
            manifest["quantization"] = quantization
        manifest["rename_map"] = renames
        if validate:
            recorded = _held_out(samples) if precision in CALIBRATED else None

            def gate() -> dict:
                return _validate(plan, specs, writer, manifest, tgt, precision, accept, progress, recorded)
            manifest["validation"] = gate() if fallback is None else fallback.run(plan, gate, quantization, progress)
        if not manifest.get("quantization", True):
            del manifest["quantization"]   # nothing was quantized or sent to fp32
        return manifest
    finally:
        if fallback is not None:
            fallback.close()


def _convert_graphs(plan, specs: list[GraphSpec], writer: BundleWriter, tgt: TargetSpec, precision: str, samples,
                    quantization: dict, progress: Progress) -> list[GraphSpec]:
    """Each ONNX graph to the target's artefacts. Converter options: `sample_inputs` (the graph's seeded
    sampler), `calibration_samples` (graph name -> recorded feeds; absent without calibration data),
    `quantization` (a dict the converter fills with its per-graph record for the manifest)."""
    from .targets import convert

    if not tgt.convert:
        return specs
    out = []
    for g, spec in zip(plan.graphs, specs):
        progress.step(f"converting graph '{g.name}' for {tgt.name} ({precision})")
        out.append(convert(tgt, spec, writer, precision, _options(g, samples, quantization)))
    return out


def _options(g, samples, quantization: dict, extra: dict | None = None) -> dict:
    return {"sample_inputs": g.sample_inputs, "quantization": quantization,
            **({"calibration_samples": samples} if samples is not None else {}), **(extra or {})}


def _fallback(plan, specs: list[GraphSpec], writer: BundleWriter, tgt: TargetSpec, precision: str, samples,
              quantization: dict):
    """The gate-driven per-graph fallback of a calibrated precision (exporters/precision_fallback.py), with the
    fp32 ONNX of `specs` kept before the converters rewrite it: reconverts one graph with stricter options."""
    from .precision_fallback import FLOAT_LEVELS, LEVELS, PrecisionFallback
    from .targets import convert

    by_name = {g.name: (g, s) for g, s in zip(plan.graphs, specs)}

    def reconvert(name: str, extra: dict) -> None:
        g, spec = by_name[name]
        convert(tgt, spec, writer, precision, _options(g, samples, quantization, extra))
    return PrecisionFallback(specs, writer, reconvert, LEVELS if precision in CALIBRATED else FLOAT_LEVELS)


def _held_out(samples):
    """graph name -> its held-out recorded feeds (those the converters did not set ranges on); None without
    calibration data."""
    if samples is None:
        return None
    from .calibration import split_held_out

    return lambda name: split_held_out(list(samples(name)))[1]


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


def _validate(plan, specs: list[GraphSpec], writer: BundleWriter, manifest: dict, tgt: TargetSpec, precision: str,
              accept: bool, progress: Progress, recorded=None) -> dict:
    """The staged bundle on the target's backend (TensorRT: the fp32 ONNX on ONNX Runtime here; the engine is
    checked on the device by `selftest`); `recorded`: validate_graphs' held-out recorded feeds."""
    backend = tgt.validate_with or tgt.backend
    staged = Bundle(writer.stage, {**manifest, "files": writer.files})
    if tgt.validate_with:
        typed = precision in tgt.graph_precisions   # the ONNX carries the precision: gate it as it ships
        checked = specs if typed else [dataclasses.replace(sp, tolerance=g.tolerance)
                                       for sp, g in zip(specs, plan.graphs)]
        report = validate_graphs(plan, checked, staged, backend, {}, precision if typed else "fp32", accept, writer,
                                 progress, recorded if typed else None)
        report["engine"] = f"not built here: run `lerobot-edge selftest BUNDLE --backend {tgt.backend}` on the device"
        return report
    return validate_graphs(plan, specs, staged, backend, {}, precision, accept, writer, progress, recorded)


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
        **({"preprocess": plan.preprocess} if plan.preprocess else {}),   # preprocess_in_graph's record
        "validation": {"passed": "skipped"},
    }
