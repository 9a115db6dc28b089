"""load_strict's key handling on a toy module: torch.compile's `_orig_mod` at any placement, the allow-list by
prefix and by full-name pattern, and the errors that name what is wrong."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from lerobot_edge.errors import CheckpointError
from lerobot_edge.policies.common.weights import load_strict, strip_compile


def _toy() -> nn.Module:
    m = nn.Module()
    m.head = nn.Linear(3, 2)
    m.body = nn.Sequential(nn.Linear(2, 2))
    return m


def _weights() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {k: rng.normal(size=tuple(v.shape)).astype(np.float32) for k, v in _toy().state_dict().items()}


@pytest.mark.parametrize("key, want", [("a._orig_mod.b.w", "a.b.w"), ("_orig_mod.a.w", "a.w"),
                                       ("_orig_mod.a._orig_mod.b._orig_mod.w", "a.b.w"), ("a.b.w", "a.b.w"),
                                       ("a.orig_mod.w", "a.orig_mod.w"), ("a._orig_mod_x.w", "a._orig_mod_x.w")])
def test_strip_compile_drops_only_whole_orig_mod_components(key, want):
    assert strip_compile(key) == want


@pytest.mark.parametrize("placement", ["", "_orig_mod.", "_orig_mod._orig_mod."])
def test_orig_mod_anywhere_loads(placement):
    w = {placement + k.replace("body.", "body._orig_mod."): v for k, v in _weights().items()}
    m = _toy()
    load_strict(m, w)
    torch.testing.assert_close(m.head.weight, torch.from_numpy(_weights()["head.weight"]))


def test_allow_list_by_prefix_and_full_name_pattern():
    w = {**_weights(), "critic._orig_mod.q.0.weight": np.zeros(2, np.float32), "legacy.mean": np.zeros(1)}
    load_strict(_toy(), w, unused_prefixes=("legacy.",), unused_patterns=(r"critic\.q\.\d+\.weight",))
    w["critic.q.0.weight_extra"] = np.zeros(1, np.float32)         # a pattern matches in full, not as a prefix
    with pytest.raises(CheckpointError, match=r"unexpected keys \(1\): critic.q.0.weight_extra$"):
        load_strict(_toy(), w, unused_prefixes=("legacy.",), unused_patterns=(r"critic\.q\.\d+\.weight",))


def test_unexpected_keys_and_shapes_are_named_as_saved():
    w = {**_weights(), "body._orig_mod.stray": np.zeros(1, np.float32)}
    w["head._orig_mod.bias"] = np.zeros(5, np.float32)
    del w["head.bias"]
    with pytest.raises(CheckpointError, match="body._orig_mod.stray") as e:
        load_strict(_toy(), w)
    assert "head._orig_mod.bias: checkpoint (5,) vs model (2,)" in str(e.value)


def test_two_keys_naming_one_tensor_are_refused():
    w = {**_weights(), "_orig_mod.head.bias": np.zeros(2, np.float32)}
    with pytest.raises(CheckpointError, match="both name 'head.bias'"):
        load_strict(_toy(), w)
