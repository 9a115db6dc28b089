"""The accuracy a bundle met at export, from its manifest's validation record, in the few figures the bench
tables print: the worst cosine and max error over every graph output, and the end-to-end chunk error (the
`sampled_chunk` check of iterative policies: the whole sampler against PyTorch on the same noise; for a
one-graph policy the graph's output is the chunk)."""

from __future__ import annotations

from typing import Any, Mapping

CHUNK_CHECKS = ("sampled_chunk", "chunk")   # validation entries that run the whole chunk, not one graph


def accuracy_summary(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """-> {"passed", "precision", "fp32_graphs", "min_cosine", "max_abs", "chunk_max_abs", "chunk_cosine"} (None
    where the record has no figure, e.g. validation skipped)."""
    val = manifest.get("validation") or {}
    graphs = val.get("graphs") or {}
    per_graph, chunk = [], []
    for name, g in graphs.items():
        outs = [o for o in (g.get("outputs") or {}).values() if isinstance(o, Mapping)]
        (chunk if name in CHUNK_CHECKS else per_graph).extend(outs)
    if not chunk and len(graphs) == 1:   # ACT, SAC: the one graph's output is the chunk
        chunk = per_graph
    quant = manifest.get("quantization") or {}
    return {"passed": val.get("passed"), "precision": val.get("precision", manifest.get("precision")),
            # graphs an int8 bundle kept in fp32 (the converter's check or the gate's fallback)
            "fp32_graphs": sorted(g for g, r in quant.items() if isinstance(r, Mapping) and r.get("mode") == "fp32"),
            "min_cosine": _worst(per_graph, "cosine", min), "max_abs": _worst(per_graph, "max_abs", max),
            "chunk_max_abs": _worst(chunk, "max_abs", max), "chunk_cosine": _worst(chunk, "cosine", min)}


def _worst(outputs: list[Mapping[str, Any]], key: str, pick) -> float | None:
    values = [float(o[key]) for o in outputs if isinstance(o.get(key), (int, float))]
    return pick(values) if values else None
