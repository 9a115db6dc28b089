"""The engine options every command that loads a bundle takes: `--device` and `--backend-options JSON`."""

from __future__ import annotations

import argparse
import json
from typing import Any


def json_object(text: str) -> dict[str, Any]:
    """argparse type: a JSON object (a dict), else a usage error (exit 2) saying what was wrong."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not valid JSON ({e}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object such as '{{\"threads\": 1}}', got {text!r}")
    return value


def add_engine_options(p, per_backend: bool = False) -> None:
    extra = (' or one object per backend: \'{"onnxruntime": {"device": "cuda"}, "openvino": {"device": "GPU"}}\''
             if per_backend else "")
    p.add_argument("--device", help="backend device: cpu, cuda, cuda:N (onnxruntime, tensorrt); CPU, GPU, NPU "
                                    "(openvino)")
    p.add_argument("--backend-options", type=json_object, metavar="JSON",
                   help='backend_options as JSON, e.g. \'{"threads": 1}\', \'{"device": "cuda:0", "cuda_graph": '
                        'true}\', \'{"providers": ["TensorrtExecutionProvider", "CUDAExecutionProvider"]}\''
                        f'{extra}; keys per backend: README "Backend options"; an unknown key is an error')


def engine_options(args) -> dict[str, Any] | None:
    """--backend-options with --device folded in (the JSON's own "device" wins); None when neither is given."""
    opts = dict(args.backend_options or {})
    if args.device:
        opts.setdefault("device", args.device)
    return opts or None
