"""lerobot-edge serve BUNDLE [--port 8001] [--backend ...] [--protocol triton|lerobot] [--max-batch 8]"""

from __future__ import annotations

import json


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="serve a bundle to many robots (NVIDIA Triton via PyTriton, or LeRobot's "
                                     "async-inference protocol)",
                       description="Start an inference server on this machine. --protocol triton (default): a "
                                   "real Triton server (PyTriton, the [serve] extra) with dynamic batching across "
                                   "robots; robots connect with RemotePolicy or `lerobot-edge run --remote`. "
                                   "--protocol lerobot: LeRobot's policy_server gRPC service, for an unmodified "
                                   "LeRobot robot_client. Ctrl-C or SIGTERM stops it cleanly.")
    p.add_argument("bundle", help="bundle directory or Hub repo id")
    p.add_argument("--port", type=int, default=None,
                   help="gRPC port (default 8001 for triton: HTTP on port-1, metrics on port+1; 8080 for lerobot)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; 0.0.0.0 for a LAN)")
    p.add_argument("--protocol", choices=("triton", "lerobot"), default="triton")
    p.add_argument("--backend", help="onnxruntime | openvino | tensorrt (default: the bundle's target's)")
    p.add_argument("--backend-options", type=json.loads, default=None, help='JSON, e.g. \'{"threads": 4}\'')
    p.add_argument("--name", help="Triton model name (default: the bundle directory's name)")
    p.add_argument("--max-batch", type=int, default=8, help="largest batch Triton's dynamic batcher forms (8)")
    p.add_argument("--max-queue-delay-us", type=int, default=2000,
                   help="how long a request may wait for others to batch with, in microseconds (2000)")
    p.add_argument("--no-batching", action="store_true", help="turn the dynamic batcher off (each request alone)")
    p.add_argument("--instances", type=int, default=1, help="model instances, each with its own engines (1)")
    p.add_argument("--rtc", choices=("guided", "exact", "off"), help="RTC mode for flow-matching bundles")
    p.add_argument("--fps", type=float, default=30.0,
                   help="lerobot protocol: the robot's control rate (action timestamps are 1/fps apart)")
    p.add_argument("--inference-latency", type=float, default=None,
                   help="lerobot protocol: least seconds per GetActions, as LeRobot's server (default 1/fps)")
    p.add_argument("--obs-queue-timeout", type=float, default=2.0,
                   help="lerobot protocol: seconds GetActions waits for an observation (2)")
    p.add_argument("--allow-unvalidated", action="store_true", help="serve a bundle whose validation failed/skipped")
    p.set_defaults(func=run)


def run(args, steps) -> int:
    ready = lambda url: print(f"serving {args.bundle} on {url} (Ctrl-C to stop)", flush=True)  # noqa: E731
    load = {"rtc": args.rtc} if args.rtc else {}
    if args.protocol == "lerobot":
        from ..serving.lerobot_async import serve_lerobot

        serve_lerobot(args.bundle, host=args.host, port=args.port or 8080, backend=args.backend,
                      backend_options=args.backend_options, fps=args.fps, inference_latency=args.inference_latency,
                      obs_queue_timeout=args.obs_queue_timeout, allow_unvalidated=args.allow_unvalidated,
                      ready=ready, **load)
        return 0
    from ..serving.pytriton_server import serve

    serve(args.bundle, port=args.port or 8001, host=args.host, name=args.name, backend=args.backend,
          backend_options=args.backend_options, max_batch=args.max_batch,
          max_queue_delay_us=args.max_queue_delay_us, batching=not args.no_batching, instances=args.instances,
          allow_unvalidated=args.allow_unvalidated, ready=ready, **load)
    print("stopped", flush=True)
    return 0
