"""lerobot-edge run BUNDLE --robot sim | --robot lerobot:<type> | --env <gym id> --fps 30 --duration 20
--mode async [--rtc guided|exact] [--backend ...] [--device D] [--backend-options JSON] [--report run.json]"""

from __future__ import annotations

import json
import sys

from .options import add_engine_options, engine_options


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="drive a robot (or the simulated one, or a gym env) with a bundle at a fixed rate",
                       description="Run the control loop: a fixed-rate clock sends one action per tick; in async "
                                   "mode a background thread computes the next chunk while the robot moves. "
                                   "Prints a live status line on stderr, a summary at the end, and writes the "
                                   "timing report with --report. Ctrl-C stops cleanly (twice: at once).")
    p.add_argument("bundle", help="bundle directory or Hub repo id; with --remote: the served model's name (or "
                                  "the bundle directory, for its manifest)")
    p.add_argument("--remote", metavar="URL",
                   help="run the policy on a server (`lerobot-edge serve`): grpc://host:port; the robot keeps the "
                        "action queue and RTC merge, and holds the last action while the server is unavailable")
    p.add_argument("--timeout", type=float, default=5.0, help="--remote: seconds per request (default 5)")
    p.add_argument("--robot", default="sim", help="sim | lerobot:<type> (e.g. lerobot:so101_follower); default sim")
    p.add_argument("--robot-config", type=json.loads, default=None,
                   help='JSON options for the robot: a LeRobot config (\'{"port": "/dev/ttyACM0", "cameras": '
                        '{"front": {"type": "opencv", "index_or_path": 0, "width": 640, "height": 480, '
                        '"fps": 30}}}\'), gymnasium.make keywords, or sim settings')
    p.add_argument("--env", help="a gymnasium env id instead of a robot ('module:EnvId' imports its package)")
    p.add_argument("--fps", type=float, default=30.0, help="control rate in Hz (default 30)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds; 0 runs until Ctrl-C (default 10)")
    p.add_argument("--mode", choices=("sync", "async"), default="async")
    p.add_argument("--backend", help="onnxruntime | openvino | tensorrt (default: the bundle's target's)")
    add_engine_options(p)
    p.add_argument("--rtc", choices=("guided", "exact", "off"), help="RTC for flow-matching bundles")
    p.add_argument("--merge", default="replace",
                   help="async chunk merge: replace | append | weighted_average | average | conservative")
    p.add_argument("--queue-threshold", type=float, default=0.5,
                   help="request the next chunk when the queue falls to this: below 1 a fraction of a chunk, "
                        "from 1 a number of actions (default 0.5)")
    p.add_argument("--clamp", action="store_true", help="clamp every action to the dataset's action min/max")
    p.add_argument("--max-step", type=float, help="largest change per tick, as a fraction of the action range")
    p.add_argument("--max-observation-age", type=float, help="seconds; an older observation is rejected")
    p.add_argument("--camera-latency", type=float, default=0.0, help="sim robot: camera latency in seconds")
    p.add_argument("--camera-jitter", type=float, default=0.0, help="sim robot: uniform extra latency [0, s]")
    p.add_argument("--allow-unvalidated", action="store_true", help="run a bundle whose validation failed/skipped")
    p.add_argument("--report", help="write the JSON timing report here")
    p.add_argument("--quiet", "-q", action="store_true", help="no live status line")
    p.set_defaults(func=run)


def _status_printer():
    tty = sys.stderr.isatty()

    def show(line: str) -> None:
        sys.stderr.write(f"\r{line}\x1b[K" if tty else f"{line}\n")
        sys.stderr.flush()
    return show, tty


def run(args, steps) -> int:
    from ..runtime.control.runner import format_summary, run_policy

    options = dict(args.robot_config or {})
    if args.robot == "sim" and not args.env:
        options.setdefault("camera_latency", args.camera_latency)
        options.setdefault("camera_jitter", args.camera_jitter)
    show, tty = (None, False) if args.quiet else _status_printer()
    q = args.queue_threshold
    policy = args.bundle
    if args.remote:
        from ..serving.remote import RemotePolicy

        policy = RemotePolicy(args.remote, args.bundle, timeout=args.timeout)
    try:
        report = run_policy(policy, args.robot, args.fps, args.duration, args.mode, args.backend, args.report,
                            env=args.env, robot_options=options, rtc=args.rtc, merge=args.merge,
                            queue_threshold=int(q) if q >= 1 else q, clamp=args.clamp, max_step=args.max_step,
                            max_observation_age=args.max_observation_age, status=show, handle_sigint=True,
                            allow_unvalidated=args.allow_unvalidated, backend_options=engine_options(args))
    finally:
        if tty:
            sys.stderr.write("\n")
    print(format_summary(report))
    return 130 if report["stopped_by"] == "interrupt" else 0

