"""Explicit checkpoint-key handling: strict loading with a named allow-list, and readable errors."""

from __future__ import annotations

import re
from typing import Iterable, Mapping

import numpy as np
import torch
from torch import nn

from ...errors import CheckpointError

COMPILE_PART = "_orig_mod"          # the name component torch.compile'd modules leave in their keys
COMPILE_INFIX = f".{COMPILE_PART}."  # its usual placement: `critic_ensemble._orig_mod.critics.0…`


def strip_compile(key: str) -> str:
    """`key` without torch.compile's `_orig_mod` components, wherever they sit: a prefix (the whole policy
    compiled), an infix (a compiled submodule, LeRobot SAC's critics by default) or nested (compiled twice)."""
    return ".".join(p for p in key.split(".") if p != COMPILE_PART)


def strip_compile_names(weights: Mapping[str, np.ndarray], what: str = "checkpoint") -> dict[str, np.ndarray]:
    """`weights` under their uncompiled names. Two keys that become one name are a `CheckpointError`: which
    tensor is meant cannot be told."""
    out: dict[str, np.ndarray] = {}
    source: dict[str, str] = {}
    for k, v in weights.items():
        name = strip_compile(k)
        if name in out:
            raise CheckpointError(f"{what}: keys {source[name]!r} and {k!r} both name {name!r} once torch.compile's "
                                  f"{COMPILE_PART!r} is removed")
        out[name], source[name] = v, k
    return out


def load_strict(module: nn.Module, weights: Mapping[str, np.ndarray], *, unused_prefixes: Iterable[str] = (),
                unused_patterns: Iterable[str | re.Pattern] = (), what: str = "checkpoint",
                assign: bool = False) -> None:
    """Load `weights` into `module` with strict=True semantics. assign=True makes the tensors (e.g. memory
    maps) the module's parameters instead of copying them: for a module built on the meta device.

    Keys are first taken without torch.compile's `_orig_mod` (any placement, `strip_compile`). Keys that then
    start with one of `unused_prefixes` or match one of `unused_patterns` in full (regular expressions) are
    legitimately present and ignored (e.g. legacy normalization buffers, training-only networks). Any other
    unexpected key (named as the file has it), a missing key or a shape mismatch is a `CheckpointError` that
    lists every offending key at once.
    """
    unused = tuple(unused_prefixes)
    patterns = [re.compile(p) for p in unused_patterns]
    original = {strip_compile(k): k for k in weights}
    clean = {k: v for k, v in strip_compile_names(weights, what).items()
             if not k.startswith(unused) and not any(p.fullmatch(k) for p in patterns)}
    own = module.state_dict()
    missing = sorted(set(own) - set(clean))
    unexpected = sorted(original[k] for k in set(clean) - set(own))
    shapes = [f"{original[k]}: checkpoint {tuple(clean[k].shape)} vs model {tuple(own[k].shape)}"
              for k in sorted(set(own) & set(clean)) if tuple(clean[k].shape) != tuple(own[k].shape)]
    problems = []
    if missing:
        problems.append(f"missing keys ({len(missing)}): {_short(missing)}")
    if unexpected:
        problems.append(f"unexpected keys ({len(unexpected)}): {_short(unexpected)}")
    if shapes:
        problems.append(f"shape mismatches ({len(shapes)}): {_short(shapes)}")
    if problems:
        raise CheckpointError(f"{what}: weights do not match the config:\n  " + "\n  ".join(problems))
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)).to(own[k].dtype) for k, v in clean.items()}
    module.load_state_dict(tensors, strict=True, assign=assign)


def _short(items: list[str], n: int = 8) -> str:
    return ", ".join(items[:n]) + (f", … (+{len(items) - n})" if len(items) > n else "")
