"""lerobot-edge build BUNDLE [--output ENGINE_DIR] [--device cuda:N] [--rebuild] [--overwrite] [--json F]"""

from __future__ import annotations

import json


def add_parser(sub) -> None:
    p = sub.add_parser("build", help="build a --target trt bundle's TensorRT engines on this device, once",
                       description="Build every graph's TensorRT engine ahead of the first load (trtexec "
                                   "--saveEngine). Without --output the engines go to the per-user engine cache, "
                                   "where load_policy finds them; with --output DIR they go to DIR (engines.json + "
                                   ".engine files) to copy to identical devices and load with backend_options "
                                   '\'{"engine_dir": "DIR"}\' (a device that differs rebuilds, or refuses with '
                                   '"engine_mismatch": "refuse").')
    p.add_argument("bundle", help="bundle directory exported with --target trt")
    p.add_argument("--output", help="engine directory (default: the per-user engine cache)")
    p.add_argument("--device", default="cuda:0", help="GPU to build for (default cuda:0)")
    p.add_argument("--rebuild", action="store_true", help="build even when an engine with the same key exists")
    p.add_argument("--overwrite", action="store_true", help="replace another bundle's engines in --output")
    p.add_argument("--json", help="write the build report")
    p.set_defaults(func=run)


def run(args, progress) -> int:
    from ..engines import build_engines

    report = build_engines(args.bundle, args.output, device=args.device, rebuild=args.rebuild,
                           overwrite=args.overwrite, progress=progress)
    progress.close()
    d = report["device"]
    print(f"engines for {d['gpu']} (compute {d['compute_capability']}, TensorRT {d['tensorrt']}, CUDA {d['cuda']}) "
          f"in {report['engine_dir']}")
    for e in report["engines"]:
        print(f"  {e['graph']:<12} {'built' if e['built'] else 'up to date'} {e['seconds']:>8.1f} s  {e['file']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0
