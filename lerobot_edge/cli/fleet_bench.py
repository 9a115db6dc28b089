"""lerobot-edge fleet-bench URL --model NAME --robots 1,2,4,8,16 [--seconds 8] [--json F] [--markdown F]"""

from __future__ import annotations

import json


def add_parser(sub) -> None:
    p = sub.add_parser("fleet-bench", help="N simulated robots against one policy server: chunks/s, latency p50/p99",
                       description="Each robot is a thread with its own RemotePolicy, calling predict_action_chunk "
                                   "in a loop for --seconds per robot count. The robots run on this machine: on a "
                                   "shared CPU the figures include their own load.")
    p.add_argument("url", help="grpc://host:port of `lerobot-edge serve` (or Triton with a lerobot-edge repository)")
    p.add_argument("--model", required=True, help="the served model's name")
    p.add_argument("--robots", default="1,2,4,8,16", help="robot counts, comma-separated (1,2,4,8,16)")
    p.add_argument("--seconds", type=float, default=8.0, help="measured seconds per robot count (8)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per request before it counts as failed")
    p.add_argument("--label", default="server", help="name of this configuration in the outputs")
    p.add_argument("--json", help="write the rows as JSON")
    p.add_argument("--markdown", help="write the table as Markdown")
    p.add_argument("--plot", help="write the throughput/latency plot (PNG; needs matplotlib)")
    p.set_defaults(func=run)


def run(args, steps) -> int:
    from ..serving.fleet import fleet_bench, markdown, plot

    counts = [int(x) for x in args.robots.split(",") if x.strip()]
    if not counts or min(counts) < 1:
        raise ValueError(f"--robots {args.robots!r}: expected positive counts, e.g. 1,2,4,8,16")

    def show(row):
        lat = row["latency_ms"]
        print(f"  {row['robots']:>3} robots  {row['chunks_per_s']:8.1f} chunks/s  p50 {lat['p50']:8.1f} ms  "
              f"p99 {lat['p99']:8.1f} ms", flush=True)

    rows = fleet_bench(args.url, args.model, counts, seconds=args.seconds, timeout=args.timeout, progress=show)
    results = {args.label: rows}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(markdown(results))
    if args.plot:
        plot(results, args.plot, f"{args.model} at {args.url}")
    return 0
