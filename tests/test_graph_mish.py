"""Mish as the exported graphs compute it (policies/common/activations.py): equal to torch's mish to float32
rounding, finite at fp16 where exp overflows, and no Softplus (ONNX Runtime's scalar kernel) in the graphs of
the policies that use it (TDMPC's MLPs, Diffusion's U-Net)."""

from __future__ import annotations

import onnx
import pytest
import tiny_zoo
import torch
from torch.nn import functional as F

from lerobot_edge.policies.common.activations import Mish, graph_mish


def test_graph_mish_matches_torch():
    x = torch.cat([torch.linspace(-100, 100, 20001), torch.randn(10000) * 4])
    assert (graph_mish(x) - F.mish(x)).abs().max() <= 1e-6 * max(1.0, float(x.abs().max()) / 10)
    assert torch.equal(Mish()(x), F.mish(x))                      # eager keeps torch's own kernel
    h = graph_mish(x.half())
    assert torch.isfinite(h).all() and (h.float() - F.mish(x)).abs().max() < 0.1   # fp16 overflow gives x


@pytest.mark.parametrize("name, graphs", [("tdmpc", ("pi_rollout", "value")), ("diffusion", ("denoise",))])
def test_exported_graphs_have_no_softplus(name, graphs, request):
    bundle = tiny_zoo.tiny_bundle(name, request)
    for g in graphs:
        ops = {n.op_type for n in onnx.load(str(bundle / f"{g}.onnx"), load_external_data=False).graph.node}
        assert not ops & {"Softplus", "Mish"} and "Exp" in ops, (g, sorted(ops))
