"""A full-size pi0 checkpoint with random weights in LeRobot 0.6's on-disk layout (gemma_2b VLM, gemma_300m
action expert, SigLIP So400m/14: 3.3 B parameters, 13 GB fp32), for the export/latency benchmark.

Weights are streamed into model.safetensors tensor by tensor (and the 527 M-row embedding table in row
blocks), so the writer holds at most one block in memory, never the model. The shapes come from our module
built on the meta device (which allocates nothing); the tokenizer is the synthetic one with PaliGemma's real
vocab size (257,152), since the real one is gated on the Hub.

    python scripts/write_full_pi0.py OUT_DIR [--cameras 3] [--seed 0]
    # a mid-size pi0 (the RTC exact cost benchmark): both Gemmas gemma_300m, tiny SigLIP, small vocab
    python scripts/write_full_pi0.py OUT_DIR --vlm gemma_300m --vision tiny --vocab 1024 --cameras 1
"""

from __future__ import annotations

import argparse
import json
import struct
import time
from pathlib import Path

import numpy as np


VOCAB = 257_152
BLOCK = 1 << 24  # elements per generated block (64 MB fp32)
EMBED = "model.paligemma_with_expert.paligemma.model.language_model.embed_tokens.weight"
LM_HEAD = "model.paligemma_with_expert.paligemma.lm_head.weight"


def config_body(cameras: int, state_dim: int, action_dim: int, vlm: str = "gemma_2b", expert: str = "gemma_300m",
                vision: str = "so400m") -> dict:
    """LeRobot 0.6 pi0 config.json (full size: gemma_2b, gemma_300m, So400m, i.e. no edge_vision_config)."""
    from lerobot_edge.testing.checkpoints.pi import pi0_config_body

    names = ["observation.images.base_0_rgb", "observation.images.left_wrist_0_rgb",
             "observation.images.right_wrist_0_rgb"][:cameras]
    body = pi0_config_body({k: (3, 224, 224) for k in names}, state_dim, action_dim, tokenizer_max_length=48,
                           chunk_size=50)
    if vision == "so400m":
        body.pop("edge_vision_config")
    body.update(paligemma_variant=vlm, action_expert_variant=expert)
    return body


def shapes_of(body: dict, vocab: int) -> dict[str, tuple]:
    """State-dict shapes of our PI0Weights for `body` (meta device: no memory), the table stored as lm_head."""
    import torch

    from lerobot_edge.policies.common.paligemma.config import PiConfig as PI0Config
    from lerobot_edge.policies.common.paligemma.model import PiWeights as PI0Weights
    from lerobot_edge.policies.pi0.model import PI0Core

    cfg = PI0Config(state_dim=body["input_features"]["observation.state"]["shape"][0],
                    action_dim=body["output_features"]["action"]["shape"][0],
                    image_keys=tuple(k for k in body["input_features"] if k.startswith("observation.images")),
                    paligemma_variant=body["paligemma_variant"], action_expert_variant=body["action_expert_variant"],
                    edge_vision_config=body.get("edge_vision_config") or {}, vocab_size=vocab)
    with torch.device("meta"):
        shapes = {k: tuple(v.shape) for k, v in PI0Weights(cfg, PI0Core(cfg)).state_dict().items()}
    shapes[LM_HEAD] = shapes.pop(EMBED)  # tied: LeRobot's save keeps lm_head, load copies it into embed_tokens
    return dict(sorted(shapes.items()))


def blocks(name: str, shape: tuple, rng: np.random.Generator):
    """Random values for one tensor in row blocks: N(0, 1/fan_in) matrices, norms near their identity
    (Gemma stores (1 + w): w ~ N(0, 0.1); LayerNorm w ~ 1 + N(0, 0.1)), small biases, the vocab table
    N(0, 1/width) so that embedding * sqrt(width) is O(1)."""
    n = int(np.prod(shape))
    rows = shape[0] if len(shape) > 1 else 1
    per_row = n // rows
    step = max(1, BLOCK // per_row)
    if name == LM_HEAD:
        std, mean = shape[1] ** -0.5, 0.0
    elif len(shape) == 1 and not name.endswith("bias"):
        gemma = "language_model" in name or "gemma_expert" in name
        std, mean = 0.1, (0.0 if gemma else 1.0)
    elif name.endswith("bias"):
        std, mean = 0.1, 0.0
    elif "position_embedding" in name:
        std, mean = 0.02, 0.0
    else:
        std, mean = float(np.prod(shape[1:])) ** -0.5, 0.0
    for r in range(0, rows, step):
        k = min(step, rows - r) * per_row
        yield (rng.standard_normal(k, dtype=np.float32) * np.float32(std) + np.float32(mean)).astype(np.float32)


def stream_safetensors(path: Path, shapes: dict[str, tuple], seed: int) -> int:
    """Write safetensors (header, then each tensor's bytes in offset order) block by block. -> bytes written."""
    header, offset = {}, 0
    for name, shape in shapes.items():
        size = int(np.prod(shape)) * 4
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * ((8 - len(head) % 8) % 8)   # the format pads the header to 8 bytes
    rng = np.random.default_rng(seed)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for name, shape in shapes.items():
            for block in blocks(name, shape, rng):
                f.write(block.tobytes())
    return 8 + len(head) + offset


def write_metadata(d: Path, body: dict, seed: int, vocab: int) -> None:
    """config.json, the synthetic tokenizer and the processor files (stats, tokenizer step) as LeRobot saves them."""
    from lerobot_edge.testing.checkpoints.layout import write_vla_processors
    from lerobot_edge.testing.checkpoints.pi import write_tokenizer

    tok = write_tokenizer(d / "tokenizer", vocab)
    (d / "config.json").write_text(json.dumps(body, indent=2))
    write_vla_processors(d, body, tok, seed)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--cameras", type=int, default=3, choices=(1, 2, 3))
    p.add_argument("--state-dim", type=int, default=14)
    p.add_argument("--action-dim", type=int, default=14)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--vlm", default="gemma_2b", choices=("gemma_2b", "gemma_300m"))
    p.add_argument("--expert", default="gemma_300m", choices=("gemma_300m",))
    p.add_argument("--vision", default="so400m", choices=("so400m", "tiny"), help="tiny: the tests' SigLIP")
    p.add_argument("--vocab", type=int, default=VOCAB)
    p.add_argument("--metadata-only", action="store_true", help="rewrite config/processors/tokenizer (e.g. another "
                                                                "camera count), keep model.safetensors")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    body = config_body(args.cameras, args.state_dim, args.action_dim, args.vlm, args.expert, args.vision)
    write_metadata(args.out, body, args.seed, args.vocab)
    if args.metadata_only:
        return
    shapes = shapes_of(body, args.vocab)
    params = sum(int(np.prod(s)) for s in shapes.values())
    size = stream_safetensors(args.out / "model.safetensors", shapes, args.seed)
    print(json.dumps({"checkpoint": str(args.out), "tensors": len(shapes), "parameters": params,
                      "bytes": size, "seconds": round(time.perf_counter() - t0, 1)}))


if __name__ == "__main__":
    main()
