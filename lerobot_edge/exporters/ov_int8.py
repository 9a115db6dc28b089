"""OpenVINO int8 of one graph with NNCF, checked before it is kept, with a per-graph fallback.

Modes, tried in order until one reproduces the fp32 IR on the check inputs (cosine >= CHECK_COSINE, a margin
over the export gate's 0.999, so the gate later passes with room to spare):

- "w8a8": NNCF post-training quantization (weights per-channel, activations per-tensor from the calibration
  feeds). `OverflowFix.ENABLE` (7-bit weights in every layer, not only the first): on x86 CPUs without VNNI
  (AVX-512 "core", AVX2) int8 dot products go through vpmaddubsw, whose int16 sums saturate with 8-bit
  weights; NNCF's default fixes only the first layer. Found on the tiny ACT: cosine 0.9995 on this VNNI CPU,
  0.985 on a non-VNNI one (`ONEDNN_MAX_CPU_ISA=AVX512_CORE` reproduces it here).
- "w8a8_vnni": the same with NNCF's default overflow fix (first layer only): 8-bit weights elsewhere, more
  accurate (ACT aloha size: cosine 0.99955 vs 0.99925 with the fix on every layer) but correct only on CPUs
  with VNNI (avx512_vnni / avx_vnni / amx_int8); the OpenVINO backend refuses such a graph on a CPU without.
- "int8_weights": NNCF weight compression (int8 asymmetric weights, per-channel; activations stay fp32):
  the same numerics on every CPU, smaller weights, no int8 activation error.
- "fp32": the graph is kept unquantized.
Statistics and checks run with an explicit f32 inference hint (OpenVINO runs bf16 by default on CPUs with
avx512_bf16, which would put bf16 rounding into the ranges and into the reference). The mode chosen, why,
and the check's numbers go into the manifest's `quantization` section.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ..accuracy import cosine
from ..errors import BackendUnavailableError

log = logging.getLogger(__name__)
# the export gate is 0.999: keep a mode only with this margin (the gate's precision fallback catches the rest;
# 0.9995 sent ACT aloha to int8_weights at 0.99944 for w8a8_vnni: x1.8 against x5 vs LeRobot)
CHECK_COSINE = 0.9993
F32 = {"INFERENCE_PRECISION_HINT": "f32"}


def quantize_int8(ov, model, graph: str, calibration: list[dict[str, np.ndarray]],
                  check: list[dict[str, np.ndarray]], source: str, min_cosine: float = CHECK_COSINE,
                  modes: tuple[str, ...] | None = None) -> tuple[Any, dict]:
    """`model` (fp32 ov.Model) -> (the model to save, the manifest record of graph `graph`).

    calibration: graph feeds (name -> array, batch 1 each) that set the activation ranges; check: feeds the
    result must reproduce the fp32 model on (held-out recorded feeds and the graph's seeded sample inputs, at
    batch 2 and 1); min_cosine: the check's bar; modes: those tried, in order (None: MODES; (): fp32)."""
    try:
        import nncf
    except ImportError as e:
        raise BackendUnavailableError("int8 for OpenVINO needs NNCF: pip install nncf") from e
    nncf.set_log_level(logging.ERROR)
    core = ov.Core()
    reference = _outputs(core, model, check)
    record: dict[str, Any] = {"calibration": source, "calibration_samples": len(calibration),
                              "check_samples": len(check), "min_cosine": min_cosine, "tried": {}}
    for mode in MODES if modes is None else modes:
        try:
            candidate = _MODES[mode](nncf, model.clone(), calibration)
            cos, err = _agreement(reference, _outputs(core, candidate, check))
        except RuntimeError as e:   # a quantized graph OpenVINO cannot run (VQ-BeT: a folded reshape)
            log.warning("int8 %s: %s fails to run (%s); trying the next mode", graph, mode, str(e).splitlines()[-1])
            record["tried"][mode] = {"error": " ".join(str(e).split())[-300:]}
            continue
        record["tried"][mode] = {"cosine": round(cos, 7), "max_abs": float(f"{err:.4g}")}
        if cos >= min_cosine:
            log.info("int8 %s: %s (cosine %.6f vs fp32)", graph, mode, cos)
            return candidate, {**record, "mode": mode, **_requires(mode)}
        log.warning("int8 %s: %s reaches cosine %.6f < %g against fp32; trying the next mode", graph, mode, cos,
                    min_cosine)
    log.warning("int8 %s: no int8 mode meets cosine %g on the check inputs: the graph stays fp32", graph,
                min_cosine)
    return model, {**record, "mode": "fp32"}


def _requires(mode: str) -> dict:
    """w8a8_vnni checked on a VNNI CPU holds only there; checked on a CPU without VNNI it held there too."""
    from ..backends.openvino import cpu_has_vnni

    return {"requires": "vnni"} if mode == "w8a8_vnni" and cpu_has_vnni() else {}


def _w8a8(nncf, model, calibration, overflow_fix: str = "ENABLE"):
    params = nncf.AdvancedQuantizationParameters(overflow_fix=getattr(nncf.OverflowFix, overflow_fix))
    return nncf.quantize(model, nncf.Dataset(calibration), subset_size=len(calibration),
                         preset=nncf.QuantizationPreset.PERFORMANCE, advanced_parameters=params)


def _weights_only(nncf, model, calibration):
    return nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_ASYM)


_MODES = {"w8a8": _w8a8, "w8a8_vnni": lambda nncf, m, c: _w8a8(nncf, m, c, "FIRST_LAYER"),
          "int8_weights": _weights_only}
MODES = tuple(_MODES)   # the order they are tried in


def _outputs(core, model, feeds: list[dict[str, np.ndarray]]) -> list[list[np.ndarray]]:
    compiled = core.compile_model(model, "CPU", F32)
    return [[np.array(v) for v in compiled(feed).values()] for feed in feeds]


def _agreement(expected: list[list[np.ndarray]], actual: list[list[np.ndarray]]) -> tuple[float, float]:
    """(worst cosine, worst max abs error) over every feed and output."""
    cos, err = 1.0, 0.0
    for exp, act in zip(expected, actual):
        for e, a in zip(exp, act):
            cos = min(cos, cosine(a, e))
            err = max(err, float(np.abs(a.astype(np.float64) - e).max(initial=0.0)))
    return cos, err
