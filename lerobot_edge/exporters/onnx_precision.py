"""Precision expressed in the ONNX graph itself, for ONNX Runtime (`--target onnx`) and strongly typed TensorRT
(`--target trt`):

- fp16: ONNX Runtime's float16 converter (onnxruntime.transformers.float16) with the fp32 islands
  (exporters/onnx_islands.py: norms, softmax, output projection) in its node block list, so they stay fp32
  behind explicit Casts; graph inputs and outputs stay fp32 unless `fp16_io`. Two small passes around it: Cast
  pairs fp32 -> fp16 -> fp32 the converter leaves between adjacent island nodes are removed (they would round
  e.g. an RMSNorm's mean of squares to fp16, the overflow the island exists to avoid), and a Transpose feeding a
  MatMul across an island border joins the island (ORT 1.32's CPU optimizer crashes on Transpose -> Cast ->
  MatMul at level "all").
- int8: Q/DQ by onnxruntime.quantization.quantize_static (exporters/onnx_qdq.py).

The converted graph replaces the bundle's ONNX in place (same file names, same IO), so the export's normal gate
validates exactly the graph that ships, on ONNX Runtime CPU, against fp32 PyTorch.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

from ..bundle import BundleWriter, GraphSpec

log = logging.getLogger(__name__)
FLOAT, FLOAT16 = 1, 10   # onnx.TensorProto.FLOAT / FLOAT16
FP16_MIN_POSITIVE, FP16_MAX = 5.96e-08, 65504.0


def graph_precision(spec: GraphSpec, precision: str, options: dict) -> str:
    """The precision graph `spec` is written at: the bundle's, or fp32 for an fp16/bf16 graph the export gate's
    fallback sent back (options["graph_precision"] == "fp32", exporters/precision_fallback.py), recorded in
    options["quantization"][graph] as mode "fp32" (backends read it: Bundle.graph_precision)."""
    if precision in ("fp16", "bf16") and options.get("graph_precision") == "fp32":
        options.setdefault("quantization", {})[spec.name] = {"mode": "fp32", "precision": precision}
        return "fp32"
    return precision


def convert_onnx(spec: GraphSpec, writer: BundleWriter, precision: str, options: dict) -> GraphSpec:
    """`--target onnx`: the graph rewritten at `precision` (fp32: unchanged; so is a graph the gate kept fp32)."""
    precision = graph_precision(spec, precision, options)
    if precision == "fp16":
        write_fp16(writer.abspath(spec.file), fp16_io=bool(options.get("fp16_io", False)))
    elif precision == "int8":
        from .onnx_qdq import write_qdq

        # ONNX Runtime CPU's int8 kernels take uint8 activations (TensorRT's symmetric int8: --target trt)
        write_qdq(writer.abspath(spec.file), spec, options, activations="uint8")
    elif precision != "fp32":
        raise ValueError(f"--precision {precision}: --target onnx writes fp32, fp16 or int8 graphs")
    return spec


def write_fp16(path: Path, *, fp16_io: bool = False) -> dict:
    """Convert the ONNX at `path` (external data beside it, if any) to fp16 with fp32 islands, in place;
    -> the structure report (check_fp16_structure), also when it finds nothing wrong."""
    import onnx
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    from .onnx_islands import select_fp32_islands

    model = onnx.load(str(path))
    islands = select_fp32_islands(model)
    blocked = _with_transpose_neighbours(model, set(islands["nodes"]))
    model = convert_float_to_float16(model, min_positive_val=FP16_MIN_POSITIVE, max_finite_val=FP16_MAX,
                                     keep_io_types=not fp16_io, disable_shape_infer=True,
                                     op_block_list=DEFAULT_OP_BLOCK_LIST, node_block_list=sorted(blocked))
    removed = _drop_cast_pairs(model)
    _sort_topologically(model.graph)   # the converter appends its input Casts last; ONNX wants producers first
    del model.graph.value_info[:]      # some entries go stale around the Casts; ORT / TensorRT infer types anyway
    save_like(model, path)
    del model
    # checked from the file without its external weights: type inference of a > 2 GB proto fails in memory
    report = check_fp16_structure(onnx.load(str(path), load_external_data=False), blocked, fp16_io)
    report["cast_pairs_removed"] = removed
    log.info("%s: fp16 with %d fp32 island nodes, %d casts", path.name, len(blocked), report["casts"])
    return report


def save_like(model, path: Path) -> None:
    """Write `model` to `path`, weights in `path.data` when the exported graph had them there (else inline)."""
    import onnx

    data = path.with_name(path.name + ".data")
    if data.exists():
        data.unlink()
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=data.name, size_threshold=1024)   # small shape constants stay inline
        data.touch()   # the bundle lists the file; a graph of only small tensors leaves it empty
    else:
        onnx.save_model(model, str(path))


def _with_transpose_neighbours(model, blocked: set[str]) -> set[str]:
    """The island nodes plus each Transpose that feeds an island MatMul/Gemm, or is an island and feeds a
    MatMul/Gemm outside: no Cast between a Transpose and its MatMul (see the module docstring)."""
    producer = {o: n for n in model.graph.node for o in n.output}
    out = set(blocked)
    for n in model.graph.node:
        if n.op_type not in ("MatMul", "Gemm"):
            continue
        for i in n.input:
            p = producer.get(i)
            if p is not None and p.op_type == "Transpose" and (p.name in blocked) != (n.name in blocked):
                out |= {p.name, n.name}
    return out


def _drop_cast_pairs(model) -> int:
    """Remove `Cast(to fp16)` whose every consumer is a `Cast(to fp32)` of it, when its input is fp32: the
    consumers of those second Casts read the fp32 input directly. -> how many pairs were removed."""
    g = model.graph
    types = _tensor_types(model)
    consumers: dict[str, list] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    graph_outputs = {o.name for o in g.output}
    rename, dead = {}, set()
    for n in g.node:
        if n.op_type != "Cast" or _cast_to(n) != FLOAT16 or types.get(n.input[0]) != FLOAT:
            continue
        after = consumers.get(n.output[0], [])
        if not after or n.output[0] in graph_outputs or any(c.op_type != "Cast" or _cast_to(c) != FLOAT
                                                            for c in after):
            continue
        if any(c.output[0] in graph_outputs for c in after):
            continue
        dead |= {id(n), *(id(c) for c in after)}
        rename.update({c.output[0]: n.input[0] for c in after})
    keep = [n for n in g.node if id(n) not in dead]
    for n in keep:
        for k, i in enumerate(n.input):
            while i in rename:
                i = rename[i]
            n.input[k] = i
    del g.node[:]
    g.node.extend(keep)
    return len(rename)


def _sort_topologically(g) -> None:
    """Stable topological order of `g.node` (Kahn's algorithm, keeping the given order among ready nodes)."""
    available = {i.name for i in g.input} | {t.name for t in g.initializer} | {""}
    pending, ordered = list(g.node), []
    while pending:
        ready = [n for n in pending if all(i in available for i in n.input)]
        if not ready:
            raise ValueError(f"graph {g.name}: a cycle or an undefined input among {[n.name for n in pending][:5]}")
        ids = {id(n) for n in ready}
        for n in ready:
            available.update(n.output)
        ordered.extend(ready)
        pending = [n for n in pending if id(n) not in ids]
    del g.node[:]
    g.node.extend(ordered)


def _cast_to(node) -> int | None:
    return next((a.i for a in node.attribute if a.name == "to"), None)


def _tensor_types(model) -> dict[str, int]:
    """Element type of every tensor the graph declares (value_info, IO, initializers, Cast outputs)."""
    g = model.graph
    types = {v.name: v.type.tensor_type.elem_type for v in (*g.value_info, *g.input, *g.output)}
    types.update({t.name: t.data_type for t in g.initializer})
    for n in g.node:
        if n.op_type == "Cast":
            types[n.output[0]] = _cast_to(n)
    return types


def check_fp16_structure(model, islands: set[str], fp16_io: bool = False) -> dict:
    """Dtypes of every float tensor of an fp16 graph: island nodes read and write fp32, the MatMul / Gemm /
    Conv outside the islands compute in fp16, graph IO is fp32 (unless `fp16_io`). Problems are listed, not
    raised: -> {"fp16_tensors", "fp32_tensors", "casts", "islands", "problems"}."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    types = _tensor_types(inferred)
    problems = []
    for n in inferred.graph.node:
        floats = [types.get(t) for t in (*n.input, *n.output) if t and types.get(t) in (FLOAT, FLOAT16)]
        if n.name in islands and FLOAT16 in floats:
            problems.append(f"island node {n.name} ({n.op_type}) touches fp16 tensors")
        elif n.name not in islands and n.op_type in ("MatMul", "Gemm", "Conv") and FLOAT in floats:
            problems.append(f"node {n.name} ({n.op_type}) outside the islands computes in fp32")
    io_type = FLOAT16 if fp16_io else FLOAT
    for v in (*inferred.graph.input, *inferred.graph.output):
        if v.type.tensor_type.elem_type in (FLOAT, FLOAT16) and v.type.tensor_type.elem_type != io_type:
            problems.append(f"graph IO {v.name} is not {'fp16' if fp16_io else 'fp32'}")
    count = Counter(types.values())
    return {"fp16_tensors": count[FLOAT16], "fp32_tensors": count[FLOAT],
            "casts": sum(n.op_type == "Cast" for n in inferred.graph.node), "islands": len(islands),
            "problems": problems}
