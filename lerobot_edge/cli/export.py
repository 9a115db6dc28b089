"""lerobot-edge export SOURCE [--target trt] [--output DIR]"""

from __future__ import annotations

import json
import sys


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export a LeRobot checkpoint (Hub id or directory) to a bundle",
                       description="Read a LeRobot checkpoint, trace its graphs, validate them against PyTorch "
                                   "and write a bundle directory.")
    p.add_argument("source", help="Hub repo id (e.g. lerobot/act_aloha_sim_insertion_human) or checkpoint directory")
    p.add_argument("--target", default="onnx", help="onnx | openvino | trt (default: onnx)")
    p.add_argument("--output", "-o", help="bundle directory to write (default: ./<name>-<target>[-<precision>], "
                                          "<name> from the source, e.g. act_aloha_sim_insertion_human-trt)")
    p.add_argument("--policy-type", help="policy type when config.json has no \"type\" (e.g. act)")
    p.add_argument("--revision", help="Hub revision (branch, tag or commit)")
    p.add_argument("--precision", default="fp32", help="fp32 | fp16 | bf16 | int8 (per target)")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (>= 18)")
    p.add_argument("--no-validate", action="store_true", help="skip validation (the bundle then needs "
                                                              "allow_unvalidated=True to load)")
    p.add_argument("--accept-accuracy", action="store_true", help="write and accept a bundle below tolerance")
    p.add_argument("--calibration", help="observations (.npz or dataset dir) for int8 calibration")
    p.add_argument("--rename-map", type=json.loads, help='JSON map of observation keys, e.g. \'{"a": "b"}\'')
    p.add_argument("--vlm", help="SmolVLA: directory (config.json, tokenizer files) or Hub id of the VLM its "
                                 "vlm_model_name names, when that cannot be reached")
    p.add_argument("--tokenizer", help="tokenizer.json file, directory or Hub id for VLA bundles (pi0/pi05: the "
                                       "PaliGemma tokenizer is gated on the Hub, so pass a local copy)")
    p.add_argument("--fuse-loop", action="store_true", help="Diffusion (DDIM): unroll the whole sampling loop "
                                                              "into one graph")
    p.add_argument("--rtc-exact", action="store_true", help="pi0/pi05: also export the RTC \"exact\" step "
                                                             "graph (true VJP through the denoiser) for "
                                                             "load_policy(..., rtc=\"exact\")")
    p.add_argument("--preprocess-in-graph", action="store_true",
                   help="the graphs take uint8 HWC RGB camera frames of the checkpoint's size and cast, scale, "
                        "normalize and resize them themselves (4x fewer bytes to a GPU; the host skips those steps)")
    p.add_argument("--base", help="base policy of a PEFT/LoRA checkpoint (default: adapter_config.json's)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    p.add_argument("--quiet", "-q", action="store_true")
    p.set_defaults(func=run)


def run(args, progress) -> int:
    from ..api import export

    path = export(args.source, args.output, args.target, policy_type=args.policy_type, revision=args.revision,
                  precision=args.precision, opset=args.opset, validate=not args.no_validate,
                  accept_accuracy=args.accept_accuracy, calibration=args.calibration, rename_map=args.rename_map,
                  base=args.base, tokenizer=args.tokenizer, vlm=args.vlm, fuse_loop=args.fuse_loop, rtc_exact=args.rtc_exact,
                  preprocess_in_graph=args.preprocess_in_graph, overwrite=args.overwrite, progress=progress)
    progress.close()
    if args.output is None:
        print(f"bundle written to {path}/ (no --output: ./<source name>-<target>)", file=sys.stderr)
    print(path)
    return 0
