"""lerobot-edge triton BUNDLE REPO_DIR [--name NAME] [--max-batch N] [--instances K] [--gpu] [--engine G=PATH]"""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("triton", help="write a Triton model repository (NGC container, Jetson) from a bundle",
                       description="Each graph becomes a Triton model on its native backend (onnxruntime_onnx, "
                                   "openvino, tensorrt_plan with --engine) with a config.pbtxt from the manifest, "
                                   "plus a Python-backend model running lerobot-edge's runtime around them (one "
                                   "request per chunk, the same protocol as `lerobot-edge serve`). The server's "
                                   "Python needs `pip install lerobot-edge`.")
    p.add_argument("bundle", help="bundle directory")
    p.add_argument("repo_dir", help="the model repository to write")
    p.add_argument("--name", help="model name (default: the bundle directory's name)")
    p.add_argument("--max-batch", type=int, default=8, help="max_batch_size of batchable models (8; 0: no batching)")
    p.add_argument("--instances", type=int, default=1, help="instance_group count per model (1)")
    p.add_argument("--max-queue-delay-us", type=int, default=2000, help="dynamic batcher delay (2000 us)")
    p.add_argument("--gpu", action="store_true", help="graph models on KIND_GPU (default KIND_CPU)")
    p.add_argument("--engine", action="append", default=[], metavar="GRAPH=PATH",
                   help="a TensorRT engine built for the serving GPU: that graph becomes a tensorrt_plan model")
    p.add_argument("--overwrite", action="store_true", help="replace an existing, non-empty REPO_DIR")
    p.set_defaults(func=run)


def run(args, steps) -> int:
    from ..serving.triton_repo import describe, write_model_repository

    engines = {}
    for item in args.engine:
        graph, sep, path = item.partition("=")
        if not sep:
            raise ValueError(f"--engine {item!r}: expected GRAPH=PATH")
        engines[graph] = path
    repo = write_model_repository(args.bundle, args.repo_dir, name=args.name, max_batch=args.max_batch,
                                  instances=args.instances, queue_delay_us=args.max_queue_delay_us, gpu=args.gpu,
                                  engines=engines, overwrite=args.overwrite)
    for m in describe(repo):
        print(f"  {m['model']:<32} {m['backend']:<18} max_batch_size {m['max_batch_size']}")
    print(f"wrote {repo}; serve it with: tritonserver --model-repository {repo}")
    return 0
