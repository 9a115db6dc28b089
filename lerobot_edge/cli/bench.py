"""lerobot-edge bench SOURCE_OR_BUNDLE [--backends torch,onnxruntime,openvino] [--device D] [--backend-options JSON]
[--json F] [--plot F.png]"""

from __future__ import annotations

from .options import add_engine_options


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="latency of every backend side by side with eager PyTorch")
    p.add_argument("source", help="checkpoint (exported here for each backend/precision) or bundle")
    p.add_argument("--backends", default="torch,onnxruntime,openvino")
    p.add_argument("--precision", default="fp32", help="comma-separated, e.g. fp32,bf16")
    p.add_argument("--iterations", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int)
    add_engine_options(p, per_backend=True)
    p.add_argument("--policy-type")
    p.add_argument("--preprocess", default="host", help="checkpoint sources: host, in_graph or host,in_graph "
                                                       "(bundles exported with --preprocess-in-graph, side by side)")
    p.add_argument("--json", help="write the full report (machine record + every figure)")
    p.add_argument("--markdown", help="write a Markdown table")
    p.add_argument("--plot", help="write a PNG: p50 per stage, p99 whiskers")
    p.add_argument("--quiet", "-q", action="store_true")
    p.set_defaults(func=run)


def run(args, progress) -> int:
    import json

    from ..bench import BenchConfig, run_bench
    from ..bench.report import markdown, plot, text_table

    cfg = BenchConfig(backends=tuple(args.backends.split(",")), precisions=tuple(args.precision.split(",")),
                      iterations=args.iterations, warmup=args.warmup, threads=args.threads,
                      policy_type=args.policy_type, device=args.device, backend_options=args.backend_options,
                      preprocess=tuple(args.preprocess.split(",")))
    report = run_bench(args.source, cfg, progress=progress)
    progress.close()
    print(text_table(report))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(markdown(report))
    if args.plot:
        plot(report, args.plot)
    return 0
