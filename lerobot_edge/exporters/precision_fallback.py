"""The export gate's precision fallback (int8 everywhere; fp16 on ONNX and TensorRT; bf16/fp16 on OpenVINO:
registry TargetSpec.fallback):
when the validation fails, the graphs
that fail are converted again, more conservatively, and the bundle is validated again, until it passes or
nothing is left to tighten (then the export fails with the last report, as without the fallback).

    a graph fails (its seeded entry, or its `recorded` one)       -> that graph is tightened
    only the end-to-end `sampled_chunk` fails, every graph passes  -> the graphs the host loop calls per step
                                                                      (plan.end_to_end.loop_graphs; when
                                                                      none is declared, or all are fp32: all)
Each time a graph is tightened it goes one step along LEVELS: the converter's own check made stricter
(cosine STRICT_COSINE; ONNX Runtime's Q/DQ on STRICT_FEEDS calibration feeds besides the seeded ones, moving
more nodes back to fp32; OpenVINO on its own check set, keeping a more accurate mode), then the graph in fp32
(at once when the converter's first try already missed its own bar after its rounds). bf16/fp16 have one
level, FLOAT_LEVELS: the graph in fp32.

Cost (export time): at most MAX_ROUNDS extra rounds, each one conversion of the graphs it tightens plus one
full validation (the same seeded inputs as the first, so a bundle that passes here passes `validate_bundle`):
a failing int8 export takes up to about 1 + MAX_ROUNDS times its convert + validate time, a passing one
nothing more than the fp32 copies of its ONNX files.

Every round is recorded in manifest["quantization"][graph]["rounds"]: the converter options, the mode, how
many nodes stayed fp32, the check's cosine, why the graph was tightened and the gate's verdict on it.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Callable

from ..bundle import BundleWriter, GraphSpec

STRICT_COSINE = 0.99999
STRICT_FEEDS = 16
LEVELS = ({"int8_check_cosine": STRICT_COSINE, "int8_check_feeds": STRICT_FEEDS}, {"int8_mode": "fp32"})
# fp16 / bf16: no stricter conversion to try, the graph goes to fp32 (onnx_precision.graph_precision: an fp32
# ONNX, an fp32 TensorRT build plan, an uncompressed OpenVINO IR compiled f32)
FLOAT_LEVELS = ({"graph_precision": "fp32"},)
# every level for the loop graphs (a sampled_chunk failure), then every level for the rest: Diffusion DDIM-10
# int8 needed the 4th round (denoise strict, denoise fp32, encoder strict, encoder fp32)
MAX_ROUNDS = 2 * len(LEVELS)


class PrecisionFallback:
    """Keeps the fp32 ONNX of every graph (taken before conversion: converters rewrite it in place) and runs
    the gate's rounds. reconvert(graph name, converter options): convert that graph again from its fp32 ONNX,
    filling quantization[graph]."""

    def __init__(self, specs: list[GraphSpec], writer: BundleWriter, reconvert: Callable[[str, dict], None],
                 levels: tuple[dict, ...] = LEVELS):
        self.writer, self.reconvert, self.levels = writer, reconvert, levels
        self.dir = Path(tempfile.mkdtemp(prefix=f".{writer.path.name}.fp32-", dir=writer.stage.parent))
        self.files = {s.name: [f for f in (s.file, s.file + ".data") if writer.abspath(f).is_file()] for s in specs}
        for rel in (f for fs in self.files.values() for f in fs):
            (self.dir / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(writer.abspath(rel), self.dir / rel)

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def run(self, plan, validate: Callable[[], dict], quantization: dict, progress) -> dict:
        """validate() -> its report, after as many rounds as it takes (at most MAX_ROUNDS) to pass."""
        level: dict[str, int] = {}
        report = validate()
        for name, record in quantization.items():
            record["rounds"] = [_entry(record, 0, {}, "first conversion")]
        for round_ in range(1, MAX_ROUNDS + 1):
            _verdicts(report, quantization)
            why = {} if report["passed"] else _to_tighten(report, plan, level, len(self.levels))
            if not why:
                break
            for name, reason in why.items():
                level[name] = _next_level(quantization.get(name) or {}, level.get(name, 0), len(self.levels))
                options = self.levels[level[name] - 1]
                progress.step(f"precision fallback round {round_}: graph '{name}' again with {options} ({reason})")
                history = (quantization.get(name) or {}).get("rounds", [])
                for rel in self.files[name]:
                    shutil.copy2(self.dir / rel, self.writer.abspath(rel))
                self.reconvert(name, options)
                record = quantization.setdefault(name, {"mode": "?"})
                record["rounds"] = [*history, _entry(record, round_, options, reason)]
            report = validate()
        _verdicts(report, quantization)
        return report


def _to_tighten(report: dict, plan, level: dict[str, int], n_levels: int = len(LEVELS)) -> dict[str, str]:
    """Graph name -> why it is tightened this round (empty: nothing left to tighten)."""
    names = [g.name for g in plan.graphs]
    open_ = [n for n in names if level.get(n, 0) < n_levels]
    failed = {n: _fail_line(report, n) for n in open_ if _fail_line(report, n)}
    if failed or any(_fail_line(report, n) for n in names):
        return failed
    chunk = _fail_line(report, "sampled_chunk")
    if not chunk or plan.end_to_end is None:
        return {}
    loop = [n for n in plan.end_to_end.loop_graphs if n in open_]
    if loop:
        return {n: f"{chunk} (the graph runs once per step of the host loop)" for n in loop}
    return {n: f"{chunk} (the loop graphs are fp32 or none is declared)" for n in open_}


def _next_level(record: dict, level: int, n_levels: int = len(LEVELS)) -> int:
    """One step along LEVELS; straight to fp32 when the converter already missed its own bar (it ran out of
    rounds: a stricter bar would end in the same graph, one wasted round)."""
    missed = record.get("check_cosine") is not None and record["check_cosine"] < record.get("min_cosine", 0.0)
    return n_levels if missed else level + 1


def _fail_line(report: dict, entry: str) -> str | None:
    """The gate's first FAIL line of `entry` (a graph, its `@recorded` check, or `sampled_chunk`)."""
    heads = (f"FAIL {entry}.", f"FAIL {entry}@recorded.")
    return next((line for line in report.get("lines", []) if line.startswith(heads)), None)


def _verdicts(report: dict, quantization: dict) -> None:
    """The gate's verdict on each graph, in the last round of its record."""
    for name, record in quantization.items():
        if record.get("rounds"):
            record["rounds"][-1]["gate"] = _fail_line(report, name) or "pass"


def _entry(record: dict, round_: int, options: dict, why: str) -> dict:
    """One round of a graph's record: what the converter kept and its own check."""
    kept = record.get("kept_fp32")
    tried = record.get("tried") or {}
    check = record.get("check_cosine", (tried.get(record.get("mode")) or {}).get("cosine"))
    return {"round": round_, "why": why, **({"options": dict(options)} if options else {}),
            "mode": record.get("mode"), **({"kept_fp32": len(kept)} if isinstance(kept, list) else {}),
            **({"check_cosine": check} if check is not None else {})}
