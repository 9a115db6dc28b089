"""Explicit checkpoint-key handling: strict loading with a named allow-list, and readable errors."""

from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np
import torch
from torch import nn

from ...errors import CheckpointError

COMPILE_INFIX = "._orig_mod."  # left in keys by torch.compile'd training runs


def load_strict(module: nn.Module, weights: Mapping[str, np.ndarray], *, unused_prefixes: Iterable[str] = (),
                what: str = "checkpoint", assign: bool = False) -> None:
    """Load `weights` into `module` with strict=True semantics. assign=True makes the tensors (e.g. memory
    maps) the module's parameters instead of copying them: for a module built on the meta device.

    Keys that start with one of `unused_prefixes` are legitimately present and ignored (e.g. legacy
    normalization buffers). Any other unexpected key, a missing key or a shape mismatch is a
    `CheckpointError` that lists every offending key at once.
    """
    unused = tuple(unused_prefixes)
    clean = {k.replace(COMPILE_INFIX, "."): v for k, v in weights.items() if not k.startswith(unused)}
    own = module.state_dict()
    missing = sorted(set(own) - set(clean))
    unexpected = sorted(set(clean) - set(own))
    shapes = [f"{k}: checkpoint {tuple(clean[k].shape)} vs model {tuple(own[k].shape)}"
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
