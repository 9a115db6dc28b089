"""Fleet benchmark (`make fleet-bench`): one `lerobot-edge serve` (a real Triton server via PyTriton) and
1..16 simulated robots on this machine, with Triton's dynamic batcher on and off. Writes
benchmarks/results/fleet.{json,md,png}.

usage: python benchmarks/fleet.py [--serve-python .venv-serve/bin/python] [--config act_small|act_aloha|act_tiny]
                                  [--robots 1,2,4,8,16] [--seconds 8]

The server and the robots share this CPU (2 cores here, shared with other work): the figures are this
machine's, robots' own load included. The bundle is a random-weight ACT checkpoint in LeRobot's layout
(lerobot_edge.testing.checkpoints; act_small by default: LeRobot's default ACT on a 96x128 camera), exported once
into .cache/fleet/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lerobot_edge import registry  # noqa: E402
from lerobot_edge.serving.fleet import markdown, plot, run_point  # noqa: E402

CONFIGS = {"act_aloha": "lerobot_edge.testing.checkpoints.act:aloha", "act_tiny": "lerobot_edge.testing.checkpoints.act:tiny",
           "act_small": None}


def act_small(d: Path) -> Path:
    """LeRobot's default ACT (resnet18, dim 512, chunk 100) on a 96x128 camera, state/action 14: compute large
    enough for batching to matter, small enough for 16 robots on 2 shared cores."""
    from lerobot_edge.testing.checkpoints.act import write_act_checkpoint

    return write_act_checkpoint(d, cameras={"observation.images.top": (3, 96, 128)}, state_dim=14, action_dim=14,
                                with_type=True)


NOTE = """
Each robot is a thread on the server's machine calling `predict_action_chunk` in a loop (no control-rate pacing),
so the server is saturated from 2 robots on; the two configurations are measured alternately at each robot count
on one shared CPU, other work running (the load average, not only these processes, sets the level). On a CPU
that is already busy, batching gains little compute (in process, a batch of 16 cost 13 single calls here) and likely
serializes the host work of a batch (transfers, stacking) with its engine call, which requests in flight
overlap without the batcher. On a GPU the trade should reverse; that has not been measured here.
"""


def bundle_for(config: str) -> Path:
    out = ROOT / ".cache" / "fleet" / config / "bundle"
    if not (out / "manifest.json").is_file():
        from lerobot_edge import export

        writer = act_small if CONFIGS[config] is None else registry.load(CONFIGS[config])
        export(writer(out.parent / "checkpoint"), out, overwrite=True)
    return out


def free_port() -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            p = s.getsockname()[1]
        if all(_free(q) for q in (p - 1, p + 1)):
            return p


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def start_server(python: str, bundle: Path, port: int, batching: bool, log: Path) -> subprocess.Popen:
    cmd = [python, "-m", "lerobot_edge", "serve", str(bundle), "--port", str(port), "--name", "fleet",
           "--max-batch", "16", *([] if batching else ["--no-batching"])]
    proc = subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + 180
    while "serving " not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"server failed to start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    return proc


def stop_server(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--serve-python", default=str(ROOT / ".venv-serve" / "bin" / "python"))
    ap.add_argument("--config", default="act_small", choices=sorted(CONFIGS))
    ap.add_argument("--robots", default="1,2,4,8,16")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args()
    counts = [int(x) for x in args.robots.split(",")]
    bundle = bundle_for(args.config)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # both servers up; the two configurations measured alternately at each robot count, so the load of this
    # shared machine drifts over both alike
    configs = (("dynamic batching", True), ("no batching", False))
    servers, results = {}, {label: [] for label, _ in configs}
    try:
        for label, batching in configs:
            port = free_port()
            servers[label] = (port, start_server(args.serve_python, bundle, port, batching,
                                                 out / f"fleet-server-{port}.log"))
            print(f"{label}: server on 127.0.0.1:{port}", flush=True)
        for n in counts:
            for label, _ in configs:
                row = run_point(f"grpc://127.0.0.1:{servers[label][0]}", "fleet", n, seconds=args.seconds)
                print(f"  {label}: {row}", flush=True)
                results[label].append(row)
    finally:
        for port, proc in servers.values():
            stop_server(proc)
            (out / f"fleet-server-{port}.log").unlink(missing_ok=True)
    machine = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
               "note": "server and robots on one shared CPU (other work was running)", "config": args.config,
               "seconds_per_point": args.seconds, "date": time.strftime("%Y-%m-%d %H:%M")}
    (out / "fleet.json").write_text(json.dumps({"machine": machine, "results": results}, indent=1) + "\n")
    (out / "fleet.md").write_text(f"Fleet benchmark: {args.config} served by `lerobot-edge serve` (PyTriton, ONNX "
                                  f"Runtime CPU), {machine['cores']} shared cores, {args.seconds:g} s per point, "
                                  f"{machine['date']}.\n\n" + markdown(results) + NOTE)
    plot(results, str(out / "fleet.png"), f"{args.config}: one Triton server, N robots ({machine['cores']} shared "
                                          "cores, robots on the same machine)")
    print(markdown(results))


if __name__ == "__main__":
    main()
