"""The fp32 islands of a reduced-precision graph, selected by what the ONNX graph contains (op types and the
producers of its outputs), never by node names: the dynamo exporter names nodes `node_layer_norm_3`,
`node_Softmax_475`, `node_linear_24`, ... which no hand-kept name list matches.

Kept in fp32 (they overflow or lose too much in fp16: DESIGN "lessons"):
- normalizations: LayerNormalization, InstanceNormalization (GroupNorm as the exporter decomposes it),
  GroupNormalization, RMSNormalization, ORT's fused (Skip)(Simplified)LayerNormalization, ...;
- RMSNorm / LayerNorm decomposed by the exporter: `Pow(x, 2) -> ReduceMean -> Add(eps) -> Sqrt ->
  Reciprocal | Div -> Mul(x, .)`, and the mean subtraction `ReduceMean -> Sub` of a decomposed LayerNorm;
- softmax: Softmax / LogSoftmax, and a decomposed one (`Exp -> ReduceSum -> Div`, with its `ReduceMax -> Sub`);
- the final projection: walking back from each graph output through shape and elementwise ops to the
  MatMul / Gemm / Conv that produced it (included);
- nodes reading a constant fp16 cannot hold (an attention mask's `Where(mask, 0, -2.4e38)`; fp16 would clip it
  to -65504, which no longer absorbs the scores of a fully masked row), and the Adds they feed;
- the arguments of Sin / Cos (rotary and sinusoidal position encodings: position x frequency reaches hundreds
  of radians, where fp16's resolution is a large fraction of a turn), walked back to the positions.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

NORM_OPS = frozenset({"LayerNormalization", "InstanceNormalization", "GroupNormalization", "RMSNormalization",
                      "SimplifiedLayerNormalization", "SkipLayerNormalization", "SkipSimplifiedLayerNormalization",
                      "LpNormalization", "MeanVarianceNormalization"})
SOFTMAX_OPS = frozenset({"Softmax", "LogSoftmax"})
PROJECTION_OPS = frozenset({"MatMul", "Gemm", "Conv", "ConvTranspose", "Einsum"})
# ops an output projection's result passes through on its way to a graph output
PASS_OPS = frozenset({"Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Identity", "Concat", "Slice",
                      "Split", "Gather", "Expand", "Cast", "Add", "Sub", "Mul", "Div", "Neg", "Tanh", "Sigmoid",
                      "Clip", "Exp", "Relu", "Elu", "Mish", "Softplus", "Erf", "ReduceMean", "ReduceSum"})
_RMS_CHAIN = frozenset({"Add", "Sqrt", "Reciprocal", "Div", "Mul"})
FP16_MAX = 65504.0
OUTPUT_HOPS = 12   # pass-through ops walked back from an output before giving up on a path
# ops a Sin / Cos argument is computed with from the positions (walked back, up to TRIG_HOPS)
_TRIG_ARG = frozenset({"Mul", "MatMul", "Div", "Add", "Sub", "Unsqueeze", "Reshape", "Transpose", "Expand", "Cast",
                       "Concat", "Slice", "Gather", "Squeeze"})
TRIG_HOPS = 6


class _Graph:
    """Producer / consumer maps of one ONNX graph (top level)."""

    def __init__(self, graph):
        self.nodes = [n for n in graph.node if n.op_type != "Constant"]
        self.producer = {o: n for n in self.nodes for o in n.output if o}
        self.consumers: dict[str, list] = defaultdict(list)
        for n in self.nodes:
            for i in n.input:
                if i:
                    self.consumers[i].append(n)
        self.outputs = [o.name for o in graph.output]

    def parents(self, node) -> list:
        return [self.producer[i] for i in node.input if i in self.producer]

    def children(self, node) -> list:
        return [c for o in node.output for c in self.consumers.get(o, ())]


def _rms_chain(g: _Graph, mean) -> list:
    """A decomposed RMS/Layer norm around `mean` (a ReduceMean): the squaring before it and the
    eps/sqrt/reciprocal steps after it up to the Mul/Div that normalizes x (inclusive)."""
    parents = g.parents(mean)
    if not parents or parents[0].op_type not in ("Pow", "Mul"):
        return []
    chain, frontier, inside = [parents[0], mean], [mean], {id(parents[0]), id(mean)}
    for _ in range(5):
        nxt = []
        for n in frontier:
            for c in g.children(n):
                if c.op_type not in _RMS_CHAIN or id(c) in inside:
                    continue
                chain.append(c)
                inside.add(id(c))
                # the normalizing Mul/Div takes x from outside the chain: the island ends there
                if not (c.op_type in ("Mul", "Div") and any(id(p) not in inside for p in g.parents(c))):
                    nxt.append(c)
        frontier = nxt
    return chain


def _softmax_chain(g: _Graph, exp) -> list:
    """`Exp -> ReduceSum -> Div` (with `ReduceMax -> Sub` before the Exp) when the Exp feeds a ReduceSum."""
    sums = [c for c in g.children(exp) if c.op_type == "ReduceSum"]
    if not sums:
        return []
    divs = [c for c in g.children(exp) if c.op_type == "Div"]
    subs = [p for p in g.parents(exp) if p.op_type == "Sub"]
    maxes = [p for s in subs for p in g.parents(s) if p.op_type == "ReduceMax"]
    return [*maxes, *subs, exp, *sums, *divs]


def _output_projection(g: _Graph) -> list:
    """The nodes from each graph output back to the projection(s) that produced it."""
    found, seen = [], set()
    frontier = [(g.producer[o], 0) for o in g.outputs if o in g.producer]
    while frontier:
        node, hops = frontier.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.op_type not in PASS_OPS | PROJECTION_OPS:   # another kind of op (a norm, a shape op): stop
            continue
        found.append(node)
        if node.op_type in PROJECTION_OPS or hops >= OUTPUT_HOPS:
            continue
        frontier.extend((p, hops + 1) for p in g.parents(node))
    return found


def _trig_argument(g: _Graph, trig) -> list:
    """A Sin / Cos and the nodes computing its argument from the positions."""
    found, frontier = [trig], [(p, 1) for p in g.parents(trig)]
    seen = {id(trig)}
    while frontier:
        node, hops = frontier.pop()
        if id(node) in seen or node.op_type not in _TRIG_ARG or hops > TRIG_HOPS:
            continue
        seen.add(id(node))
        found.append(node)
        frontier.extend((p, hops + 1) for p in g.parents(node))
    return found


def _large_constants(model) -> set[str]:
    """Names of the small inline float constants holding a value beyond fp16's range (|x| > 65504)."""
    from onnx import TensorProto, numpy_helper

    out = set()
    for t in model.graph.initializer:
        if t.data_type in (TensorProto.FLOAT, TensorProto.DOUBLE) and t.data_location != TensorProto.EXTERNAL \
                and int(np.prod(t.dims, dtype=np.int64)) <= 1024:
            if np.abs(numpy_helper.to_array(t)).max(initial=0) > FP16_MAX:
                out.add(t.name)
    return out


def select_fp32_islands(model) -> dict:
    """-> {"nodes": node names kept in fp32 (sorted), "tensors": their output tensor names, "ops": op type ->
    count, "rules": rule -> count}. `model`: an onnx.ModelProto (weights need not be loaded)."""
    g = _Graph(model.graph)
    rules: dict[str, list] = {"norm": [], "softmax": [], "decomposed_norm": [], "decomposed_softmax": [],
                              "position_encoding": [], "large_constant": [],
                              "output_projection": _output_projection(g)}
    large = _large_constants(model)
    for n in g.nodes:
        if n.op_type in NORM_OPS:
            rules["norm"].append(n)
        elif n.op_type in SOFTMAX_OPS:
            rules["softmax"].append(n)
        elif n.op_type == "ReduceMean":
            chain = _rms_chain(g, n)
            subs = [c for c in g.children(n) if c.op_type == "Sub"]   # mean subtraction of a decomposed LN
            rules["decomposed_norm"].extend(chain or ([n, *subs] if subs else []))
        elif n.op_type == "Exp":
            rules["decomposed_softmax"].extend(_softmax_chain(g, n))
        elif n.op_type in ("Sin", "Cos"):
            rules["position_encoding"].extend(_trig_argument(g, n))
        if large.intersection(n.input):
            rules["large_constant"].extend([n, *(c for c in g.children(n) if c.op_type == "Add")])
    picked = {id(n): n for nodes in rules.values() for n in nodes}
    nodes = sorted(n.name for n in picked.values() if n.name)
    ops: dict[str, int] = defaultdict(int)
    for n in picked.values():
        ops[n.op_type] += 1
    return {"nodes": nodes, "tensors": sorted({o for n in picked.values() for o in n.output if o}),
            "ops": dict(sorted(ops.items())), "rules": {k: len({id(n) for n in v}) for k, v in rules.items()}}

