"""Blocks shared by the LeRobot reference scripts (scripts/lerobot_reference*.py): seeded generators, the weight
redraw (every tensor at a scale where it changes the output), synthetic stats and observations, saving with
LeRobot's own save_pretrained and reloading with from_pretrained, draw taps, and writing reference.npz,
meta.json and DONE.

Runs ONLY inside LeRobot's reference venvs (torch + numpy; LeRobot is imported inside the functions that need it,
so one module serves 0.4.4 and 0.6.1). It never imports lerobot_edge. Every reference cache key
(scripts/reference_cache.sh, mk/*.mk; tests/test_reference_sources.py checks them) hashes this file, so an edit
here regenerates every reference: keep each draw (order, scale, seed derivation) as it is unless changing the
references is the point.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# cases' inputs: [(feature key, FeatureType name, shape)], e.g. ("observation.state", "STATE", (6,))


# ---- seeds and hashes ------------------------------------------------------------------------------------------
# Two derivations, both kept: each one's references were generated with it.
def derived_seed(seed: int, purpose: str) -> int:
    """ACT and Diffusion: 63 bits of sha256("<seed>:<purpose>")."""
    digest = hashlib.sha256(f"{seed}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def generator(seed: int, purpose: str) -> torch.Generator:
    """A CPU generator seeded with derived_seed(seed, purpose)."""
    g = torch.Generator(device="cpu")
    g.manual_seed(derived_seed(seed, purpose))
    return g


def offset_seed(seed: int, purpose: str) -> int:
    """SAC, TDMPC, VQ-BeT, gaussian_actor: seed * 1000 + the first 24 bits of sha256(purpose)."""
    return seed * 1000 + int(hashlib.sha256(purpose.encode()).hexdigest()[:6], 16)


def offset_generator(seed: int, purpose: str) -> torch.Generator:
    """A CPU generator seeded with offset_seed(seed, purpose)."""
    return torch.Generator().manual_seed(offset_seed(seed, purpose))


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sources_sha256() -> dict[str, str]:
    """sha256 of every repo source this process imported (the script, this module, lerobot_edge.testing
    writers), by path relative to the repo root: what the references' cache keys hash."""
    roots = (REPO / "scripts", REPO / "lerobot_edge")
    out = {}
    for mod in list(sys.modules.values()):
        f = getattr(mod, "__file__", None)
        p = Path(f) if isinstance(f, str) and os.path.isabs(f) else None  # (torch.ops' is a bare "_ops.py")
        if p is not None and p.suffix == ".py" and p.is_file() and any(p.resolve().is_relative_to(r) for r in roots):
            p = p.resolve()
            out[str(p.relative_to(REPO))] = sha256_file(p)
    return dict(sorted(out.items()))


# ---- weights -----------------------------------------------------------------------------------------------------
def normal_(t: torch.Tensor, g: torch.Generator, std: float, mean: float = 0.0) -> None:
    """t <- mean + std * N(0, 1), drawn from g in float32."""
    t.copy_(mean + std * torch.randn(t.shape, generator=g, dtype=torch.float32).to(t.dtype))


def uniform_(t: torch.Tensor, g: torch.Generator, lo: float, hi: float) -> None:
    """t <- U(lo, hi), drawn from g in float32."""
    t.copy_(lo + (hi - lo) * torch.rand(t.shape, generator=g, dtype=torch.float32).to(t.dtype))


def _norm_types() -> tuple[type, ...]:
    kinds: tuple[type, ...] = (torch.nn.LayerNorm, torch.nn.GroupNorm, torch.nn.modules.batchnorm._BatchNorm)
    try:  # ACT's (and torchvision resnets') frozen batch norm
        from torchvision.ops.misc import FrozenBatchNorm2d
    except ImportError:
        return kinds
    return (*kinds, FrozenBatchNorm2d)


def _redraw_module(mod: torch.nn.Module, g, norms, qk_gain, embedding_std, kernel_std) -> list[str]:
    """Draw mod's own tensors (not its children's); return their local names ([] for a kind not handled)."""
    drawn = []

    def draw(name: str, std: float, mean: float = 0.0) -> None:
        if getattr(mod, name, None) is not None:
            normal_(getattr(mod, name), g, std, mean)
            drawn.append(name)

    if isinstance(mod, (torch.nn.ConvTranspose1d, torch.nn.ConvTranspose2d)):  # weight (in, out / groups, *k)
        draw("weight", 1.0 / math.sqrt(mod.weight.shape[0] * math.prod(mod.weight.shape[2:])))
        draw("bias", 0.1)
    elif isinstance(mod, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Linear)):
        draw("weight", 1.0 / math.sqrt(mod.weight[0].numel()))  # N(0, 1/fan_in)
        draw("bias", 0.1)
    elif isinstance(mod, torch.nn.MultiheadAttention):  # in_proj_weight (3D, D); out_proj is a Linear child
        assert mod._qkv_same_embed_dim and mod.bias_k is None and mod.bias_v is None
        draw("in_proj_weight", 1.0 / math.sqrt(mod.embed_dim))
        if qk_gain != 1.0:
            mod.in_proj_weight[: 2 * mod.embed_dim].mul_(qk_gain)  # q and k rows: sharper attention
        draw("in_proj_bias", 0.1)
    elif isinstance(mod, norms):
        draw("weight", 0.1, mean=1.0)
        draw("bias", 0.1)
        if getattr(mod, "running_mean", None) is not None:
            draw("running_mean", 0.1)
            uniform_(mod.running_var, g, 0.5, 1.5)
            drawn.append("running_var")
    elif isinstance(mod, torch.nn.Embedding):
        draw("weight", embedding_std)
    elif isinstance(getattr(mod, "kernel", None), torch.Tensor):  # SAC's SpatialLearnedEmbeddings
        draw("kernel", kernel_std)
    return drawn


@torch.no_grad()
def redraw(policy: torch.nn.Module, g: torch.Generator, *, qk_gain: float = 1.0, embedding_std: float = 1.0,
           kernel_std: float = 0.3, keep: tuple[str, ...] = (), strict: bool = False) -> list[str]:
    """Redraw every parameter and buffer of the kinds below from g, at a scale that keeps activations O(1) and
    lets every tensor change the output (LeRobot's inits hide layers: zero heads, init_final 0.05, std 0.02).

    Conv / linear weights N(0, 1/fan_in), biases N(0, 0.1); attention in_proj N(0, 1/D), its q and k rows x
    qk_gain; norm weights 1 + N(0, 0.1), biases N(0, 0.1), running_mean N(0, 0.1), running_var U(0.5, 1.5);
    embeddings N(0, embedding_std); a `kernel` tensor N(0, kernel_std). Modules are visited in named_modules()
    order, so the same generator state gives the same weights.

    Returns the sorted state-dict names left as LeRobot computed them; strict: every one must be in `keep`, else
    RuntimeError naming the others.
    """
    norms = _norm_types()
    touched: set[str] = set()
    for mod_name, mod in policy.named_modules():
        prefix = f"{mod_name}." if mod_name else ""
        touched.update(prefix + n for n in _redraw_module(mod, g, norms, qk_gain, embedding_std, kernel_std))
    left = sorted(set(policy.state_dict()) - touched)
    unexpected = [n for n in left if n not in keep]
    if strict and unexpected:
        raise RuntimeError(f"tensors not redrawn: {unexpected}")
    return left


@torch.no_grad()
def sensitivity_check(policy: torch.nn.Module, forward, g: torch.Generator, no_influence=lambda name: False) -> dict:
    """Perturb every state-dict tensor in turn; report those that do not move forward()'s output.

    forward: () -> Tensor, e.g. lambda: policy.predict_action_chunk(batch). no_influence(name): True for the
    tensors that structurally cannot change it (reported if they do).
    """
    base = forward().clone()
    scale = float(base.abs().mean())
    dead, weak, min_rel = [], [], math.inf
    named = list(policy.state_dict(keep_vars=True).items())
    for name, t in named:
        orig = t.detach().clone()
        noise = torch.randn(t.shape, generator=g, dtype=torch.float32)
        if name.endswith("running_var"):
            t.data.mul_(torch.exp(0.2 * noise))
        else:
            t.data.add_(0.2 * (orig.abs().mean() + 1e-3) * noise)
        out = forward()
        t.data.copy_(orig)
        rel = float((out - base).abs().max()) / max(scale, 1e-12)
        if no_influence(name):
            if rel > 1e-4:  # below that it is fp32 rounding (e.g. softmax weights not summing to exactly 1)
                dead.append(f"{name} (expected no influence, but it moves the output by {rel:.1e})")
        elif rel < 1e-5:
            dead.append(name)
        else:
            min_rel = min(min_rel, rel)
            if rel < 1e-3:
                weak.append((name, rel))
    if not torch.equal(forward(), base):
        raise RuntimeError("sensitivity check did not restore the weights")
    return {"n_tensors": len(named), "unexpected_no_influence": dead, "weak_influence_lt_1e-3": weak,
            "min_relative_change": min_rel}


# ---- features, stats, observations -----------------------------------------------------------------------------
def policy_features(inputs, action_dim: int) -> tuple[dict, dict]:
    """LeRobot's input_features and output_features for a case's inputs and action dim."""
    from lerobot.configs.types import FeatureType, PolicyFeature

    return ({key: PolicyFeature(type=FeatureType(ftype), shape=tuple(shape)) for key, ftype, shape in inputs},
            {"action": PolicyFeature(type=FeatureType.ACTION, shape=(action_dim,))})


def _with_action(inputs, action_dim: int) -> list:
    return [*inputs, ("action", "ACTION", (action_dim,))]


def full_stats(inputs, action_dim: int, g: torch.Generator) -> dict[str, dict[str, torch.Tensor]]:
    """ACT / Diffusion: random but realistic stats with every key LeRobot 0.4's compute_stats writes; images
    ImageNet mean / std (C, 1, 1) and fixed [0, 1] quantiles."""
    stats: dict[str, dict[str, torch.Tensor]] = {}
    for key, ftype, shape in _with_action(inputs, action_dim):
        count = torch.tensor([float(5000 + int(torch.randint(0, 5000, (1,), generator=g)))])
        if ftype == "VISUAL":
            cshape = (shape[0], 1, 1)
            full = lambda v: torch.full(cshape, v, dtype=torch.float32)  # noqa: E731
            stats[key] = {"mean": torch.tensor(IMAGENET_MEAN, dtype=torch.float32).reshape(cshape),
                          "std": torch.tensor(IMAGENET_STD, dtype=torch.float32).reshape(cshape),
                          "min": full(0.0), "max": full(1.0), "q01": full(0.01), "q10": full(0.10),
                          "q50": full(0.50), "q90": full(0.90), "q99": full(0.99), "count": count}
        else:
            (d,) = shape
            mean = torch.randn(d, generator=g)
            std = 0.5 + 1.5 * torch.rand(d, generator=g)
            stats[key] = {"mean": mean, "std": std, "min": mean - 2.0 * std, "max": mean + 2.0 * std,
                          "q01": mean - 1.8 * std, "q10": mean - 1.2816 * std, "q50": mean.clone(),
                          "q90": mean + 1.2816 * std, "q99": mean + 1.8 * std, "count": count}
    return stats


def mean_std_stats(inputs, action_dim: int, g: torch.Generator) -> dict:
    """SAC / gaussian_actor: mean, std, min, max (images: ImageNet mean / std only, (3, 1, 1))."""
    stats = {}
    for key, kind, shape in _with_action(inputs, action_dim):
        if kind == "VISUAL":
            stats[key] = {"mean": torch.tensor(list(IMAGENET_MEAN)).view(3, 1, 1),
                          "std": torch.tensor(list(IMAGENET_STD)).view(3, 1, 1)}
            continue
        mean, std = torch.randn(shape, generator=g), 0.5 + torch.rand(shape, generator=g)
        stats[key] = {"mean": mean, "std": std, "min": mean - 2 * std, "max": mean + 2 * std}
    return stats


def min_max_stats(inputs, action_dim: int, g: torch.Generator) -> dict:
    """TDMPC / VQ-BeT: min ~ N(0, 1), max = min + 1 + U(0, 1) for every non-image feature."""
    stats = {}
    for key, kind, shape in _with_action(inputs, action_dim):
        if kind != "VISUAL":
            lo = torch.randn(shape, generator=g)
            stats[key] = {"min": lo, "max": lo + 1 + torch.rand(shape, generator=g)}
    return stats


def observations(inputs, batch: int, n_steps: int, stats, g: torch.Generator,
                 state_draw: str = "normal") -> list[dict[str, torch.Tensor]]:
    """n_steps observation dicts, features in `inputs` order: images (B, C, H, W) U(0, 1); other features (B, D)
    mean + std * N(0, 1) (state_draw "normal") or U(min, max) ("uniform"), in robot units."""
    out = []
    for _ in range(n_steps):
        obs = {}
        for key, ftype, shape in inputs:
            if ftype == "VISUAL":
                obs[key] = torch.rand((batch, *shape), generator=g, dtype=torch.float32)
            elif state_draw == "normal":
                mean, std = stats[key]["mean"], stats[key]["std"]
                obs[key] = (mean + std * torch.randn((batch, *shape), generator=g)).to(torch.float32)
            else:
                lo, hi = stats[key]["min"], stats[key]["max"]
                obs[key] = lo + (hi - lo) * torch.rand((batch, *shape), generator=g)
        out.append(obs)
    return out


def observation_batch(pre, obs: dict) -> dict:
    """pre(obs) without the non-observation entries LeRobot's pre-processor adds."""
    return {k: v for k, v in pre(dict(obs)).items() if k.startswith("observation.")}


# ---- save / reload -----------------------------------------------------------------------------------------------
def add_type_field(config_path: Path, policy_type: str) -> None:
    """Put "type": policy_type first, as draccus 0.10 (LeRobot's pin) writes it."""
    cfg = json.loads(config_path.read_text())
    if "type" not in cfg:
        config_path.write_text(json.dumps({"type": policy_type, **cfg}, indent=4) + "\n")


def save_checkpoint(ckpt: Path, policy, pre, post, policy_type: str | None = None) -> None:
    """LeRobot's own save_pretrained for the policy and both processors; policy_type: add the "type" field."""
    for obj in (policy, pre, post):
        obj.save_pretrained(str(ckpt))
    if policy_type:
        add_type_field(ckpt / "config.json", policy_type)


def reload(policy_cls, ckpt: Path, expected: dict[str, torch.Tensor] | None = None):
    """(policy in eval mode, pre, post) from the files on disk, as lerobot-eval / lerobot-record load them.
    expected: the state dict that was saved; every reloaded tensor must equal it (from_pretrained is strict=False).
    """
    from lerobot.policies.factory import make_pre_post_processors

    if "type" in json.loads((ckpt / "config.json").read_text()):
        policy = policy_cls.from_pretrained(str(ckpt))  # the normal path (PreTrainedConfig pops "type")
    else:
        # LeRobot 0.4.4's PreTrainedConfig.from_pretrained fails on a config.json without "type" (draccus
        # ParsingError, then config.pop("type")): parse the file as the policy's config class directly.
        import draccus

        with draccus.config_type("json"):
            config = draccus.parse(policy_cls.config_class, str(ckpt / "config.json"), args=[])
        policy = policy_cls.from_pretrained(str(ckpt), config=config)
    policy.eval()
    if expected is not None:
        check_reloaded_weights(policy, ckpt, expected)
    pre, post = make_pre_post_processors(policy.config, pretrained_path=str(ckpt),
                                         preprocessor_overrides={"device_processor": {"device": "cpu"}})
    return policy, pre, post


def check_reloaded_weights(policy, ckpt: Path, expected: dict[str, torch.Tensor]) -> None:
    """Every tensor of model.safetensors is in the policy and equal to what was saved; every other policy tensor
    is an alias of a saved one (safetensors stores a shared tensor once, e.g. SAC's shared encoder)."""
    from safetensors.torch import load_file

    on_disk = load_file(str(ckpt / "model.safetensors"))
    sd = policy.state_dict()
    saved_ptrs = {v.data_ptr() for k, v in sd.items() if k in on_disk}
    only_disk = sorted(set(on_disk) - set(sd))
    only_model = sorted(k for k in set(sd) - set(on_disk) if sd[k].data_ptr() not in saved_ptrs)
    if only_disk or only_model:
        raise RuntimeError(f"key mismatch: only on disk {only_disk}, only in model {only_model}")
    for k, v in sd.items():
        if (k in on_disk and not torch.equal(v, on_disk[k])) or not torch.equal(v, expected[k]):
            raise RuntimeError(f"reloaded tensor {k} differs from what was saved")


def snapshot(policy) -> dict[str, torch.Tensor]:
    """A copy of the state dict, for reload(..., expected=)."""
    return {k: v.detach().clone() for k, v in policy.state_dict().items()}


# ---- draws -------------------------------------------------------------------------------------------------------
class RecordedNormal:
    """Stands in for a function that draws standard-normal noise (torch.distributions' _standard_normal,
    diffusers' randn_tensor): draws come from g, in call order, and are kept (float32 numpy copies)."""

    def __init__(self, g: torch.Generator):
        self.g, self.draws = g, []

    def __call__(self, shape, *args, **kwargs):
        x = torch.randn(tuple(shape), generator=self.g, dtype=torch.float32)
        self.draws.append(x.numpy().copy())
        return x


@contextmanager
def patched(target, **replacements):
    """Replace attributes of a module or object for the block (this process only); always restored."""
    saved = {name: getattr(target, name) for name in replacements}
    for name, value in replacements.items():
        setattr(target, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(target, name, value)


# ---- outputs -----------------------------------------------------------------------------------------------------
def write_reference(path: Path, arrays: dict, compressed: bool = False) -> Path:
    """np.savez the arrays after checking every float array is finite; returns path."""
    for k, v in arrays.items():
        v = np.asarray(v)
        if np.issubdtype(v.dtype, np.floating) and not np.all(np.isfinite(v)):
            raise RuntimeError(f"{path}: non-finite values in {k}")
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    return path


def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, default=str) + "\n")


def write_done(out: Path, payload: dict) -> None:
    """OUT/DONE (JSON), written atomically and last: a reference dir without it is incomplete."""
    with tempfile.NamedTemporaryFile("w", dir=out, delete=False, suffix=".tmp") as f:
        json.dump(payload, f, indent=2, default=str)
    os.replace(f.name, out / "DONE")


def lerobot_version() -> str:
    import lerobot

    return lerobot.__version__


def cli(cases: dict, run_case, doc: str | None = None, argv=None) -> int:
    """`--out DIR [--cases a,b]`: run_case(name, cases[name], DIR) for each case, in order."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--cases", default=",".join(cases), help=f"comma list (default all: {','.join(cases)})")
    args = ap.parse_args(argv)
    names = [c.strip() for c in args.cases.split(",") if c.strip()]
    if unknown := [c for c in names if c not in cases]:
        ap.error(f"unknown cases {unknown}; known: {list(cases)}")
    for name in names:
        run_case(name, cases[name], args.out)
    return 0
