"""Full-size pi0 (3.3 B parameters) on this machine: export time and memory per phase, then chunk latency of
eager PyTorch vs ONNX Runtime vs OpenVINO (fp32, and `openvino-bf16`: the fp32 IR compiled with a bf16 inference
precision hint), one process per backend, with shared inputs and noise.

    python scripts/write_full_pi0.py /work/full/pi0_full                    # random weights, LeRobot layout
    /usr/bin/time -v python benchmarks/pi0_full.py export /work/full/pi0_full /work/full/bundle
    python benchmarks/pi0_full.py latency /work/full/bundle --backend onnxruntime --checkpoint /work/full/pi0_full
    python benchmarks/pi0_full.py latency /work/full/bundle --backend eager --checkpoint /work/full/pi0_full
    python benchmarks/pi0_full.py compare /work/full/results                # chunks of each backend vs eager
    python benchmarks/pi0_full.py embed-table                               # the table in a graph vs on the host

Memory is sampled from /proc/self/status twice a second: RSS, and its anonymous part (RssAnon: what the
process really owns; RssFile is page cache of memory-mapped weights, which the kernel can drop). The export
is not validated in-process (that would hold the torch model and an engine at once): each backend's chunk is
saved and compared with eager's instead (`compare`), in normalized action units.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path

import numpy as np

SEED = 7


class MemoryMonitor:
    """Peak VmRSS / RssAnon / RssFile (GiB) per phase of this process, sampled every `period` seconds."""

    def __init__(self, period: float = 0.5):
        self.phase, self.peaks, self.period = "start", {}, period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @staticmethod
    def sample() -> dict[str, float]:
        out = {}
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile"):
                out[key] = int(rest.split()[0]) / 2**20   # kB -> GiB
        return out

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.record()

    def record(self) -> None:
        s, peak = self.sample(), self.peaks.setdefault(self.phase, {})
        for k, v in s.items():
            peak[k] = round(max(peak.get(k, 0.0), v), 2)

    def set(self, phase: str) -> None:
        self.record()
        self.phase = phase
        self.record()

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join()
        self.record()
        return self.peaks


def cmd_export(args) -> dict:
    from lerobot_edge import export

    mon, marks, t0 = MemoryMonitor(), [], time.perf_counter()

    def progress(msg: str) -> None:
        marks.append((round(time.perf_counter() - t0, 1), msg))
        print(f"[{marks[-1][0]:7.1f}s] {msg}", flush=True)
        mon.set(msg)

    export(args.checkpoint, args.bundle, "onnx", validate=False, overwrite=True, progress=progress)
    total = time.perf_counter() - t0
    files = {p.name: round(p.stat().st_size / 2**30, 3) for p in Path(args.bundle).iterdir() if p.is_file()}
    return {"export_s": round(total, 1), "phases": marks, "peak_gib_per_phase": mon.stop(), "files_gib": files}


def _observation(manifest: dict, rng: np.random.Generator) -> dict:
    from lerobot_edge.runtime.observations import random_observation

    return {**random_observation(manifest["observations"], rng), "task": "pick up the red cube and put it in the bowl"}


def cmd_latency(args) -> dict:
    from lerobot_edge import load_policy

    mon, t0 = MemoryMonitor(), time.perf_counter()
    mon.set("load")
    if args.backend == "eager":
        from lerobot_edge.exporters.torch_session import load_torch_policy

        policy = load_torch_policy(args.bundle, args.checkpoint, threads=args.threads)
    else:
        name, _, precision = args.backend.partition("-")   # openvino-bf16: the fp32 IR compiled with a bf16 hint
        opts = {"threads": args.threads, **({"precision": precision} if precision else {})}
        policy = load_policy(args.bundle, name, backend_options=opts, allow_unvalidated=True)
    load_s = time.perf_counter() - t0
    rng = np.random.default_rng(SEED)
    obs = _observation(policy.manifest, rng)
    noise = rng.standard_normal(tuple(policy.manifest["noise_shape"][1:])).astype(np.float32)
    runs = []
    for i in range(args.iters + 1):  # the first call warms up
        mon.set("warmup" if i == 0 else "chunks")
        chunk = policy.predict_action_chunk(obs, noise=noise)
        runs.append({k: round(v, 3) for k, v in policy.timings.items()})
        print(f"{args.backend} chunk {i}: {runs[-1]}", flush=True)
    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / f"chunk_{args.backend}.npy", chunk)
    totals = [r["total"] for r in runs[1:]]
    return {"backend": args.backend, "threads": args.threads, "load_s": round(load_s, 1), "warmup": runs[0],
            "chunks": runs[1:], "median_total_s": float(np.median(totals)), "peak_gib_per_phase": mon.stop()}


def cmd_compare(args) -> dict:
    """max |chunk - eager's| over the chunk, in normalized action units (the bundle's action scale)."""
    from lerobot_edge.bundle import Bundle
    from lerobot_edge.kernels.normalize import action_scale

    b = Bundle.open(args.bundle, verify=False)
    key = b.manifest["action"]["key"]
    scale = action_scale(b.manifest["normalization"].get(key, "IDENTITY"), b.stats().get(key, {}))
    res = Path(args.results)
    ref = np.load(res / "chunk_eager.npy")
    return {p.stem[6:]: float(np.abs((np.load(p) - ref) / scale).max()) for p in sorted(res.glob("chunk_*.npy"))}


def cmd_embed_table(args) -> dict:
    """What keeping the (vocab, width) embedding table inside the prefix graph costs an engine: an ONNX graph of
    just the gather over the table, loaded in ONNX Runtime, vs a host gather from a memory-mapped .npy."""
    import onnxruntime as ort

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "embed.onnx").exists():
        _write_table_graph(work, args.vocab, args.width)
    ids = np.random.default_rng(0).integers(0, args.vocab, (1, 48))
    mon = MemoryMonitor()
    mon.set("host_mmap_gather")
    host = np.load(work / "embed.npy", mmap_mode="r")
    rows = np.asarray(host[ids])                                              # (1, 48, W)
    base = MemoryMonitor.sample()
    mon.set("onnxruntime_session")
    sess = ort.InferenceSession(str(work / "embed.onnx"), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"ids": ids})[0]
    after = MemoryMonitor.sample()
    assert np.array_equal(got, rows)
    del sess
    import openvino as ov

    base_ov = MemoryMonitor.sample()
    mon.set("openvino_compiled")
    compiled = ov.Core().compile_model(str(work / "embed.onnx"), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    got_ov = compiled({"ids": ids})[compiled.outputs[0]]
    after_ov = MemoryMonitor.sample()
    assert np.array_equal(got_ov, rows)
    return {"table": [args.vocab, args.width], "table_gib": round(args.vocab * args.width * 4 / 2**30, 3),
            "onnxruntime_rss_delta_gib": round(after["VmRSS"] - base["VmRSS"], 2),
            "onnxruntime_anon_delta_gib": round(after["RssAnon"] - base["RssAnon"], 2),
            "openvino_rss_delta_gib": round(after_ov["VmRSS"] - base_ov["VmRSS"], 2),
            "openvino_anon_delta_gib": round(after_ov["RssAnon"] - base_ov["RssAnon"], 2),
            "peak_gib_per_phase": mon.stop()}


def _write_table_graph(work: Path, vocab: int, width: int) -> None:
    """embed.npy (random table, written in blocks) and embed.onnx: one Gather over it, external data."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    table = np.lib.format.open_memmap(work / "embed.npy", "w+", np.float32, (vocab, width))
    for r in range(0, vocab, 16384):  # written in blocks: never the whole table in anonymous memory
        table[r: r + 16384] = np.random.default_rng(r).standard_normal((min(16384, vocab - r), width),
                                                                       dtype=np.float32)
    table.flush()
    del table
    init = numpy_helper.from_array(np.load(work / "embed.npy", mmap_mode="r"), "table")
    graph = helper.make_graph([helper.make_node("Gather", ["table", "ids"], ["rows"])], "embed",
                              [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 48])],
                              [helper.make_tensor_value_info("rows", TensorProto.FLOAT, [1, 48, width])],
                              [init])
    onnx.save(helper.make_model(graph), str(work / "embed.onnx"), save_as_external_data=True,
              all_tensors_to_one_file=True, location="embed.onnx.data")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export")
    e.add_argument("checkpoint")
    e.add_argument("bundle")
    lat = sub.add_parser("latency")
    lat.add_argument("bundle")
    lat.add_argument("--backend", choices=("eager", "onnxruntime", "openvino", "openvino-bf16"), required=True)
    lat.add_argument("--checkpoint", help="eager: the checkpoint the bundle came from")
    lat.add_argument("--iters", type=int, default=2)
    lat.add_argument("--threads", type=int, default=2)
    lat.add_argument("--results", default="/work/full/results")
    c = sub.add_parser("compare")
    c.add_argument("bundle")
    c.add_argument("--results", default="/work/full/results")
    t = sub.add_parser("embed-table")
    t.add_argument("--vocab", type=int, default=257_152)
    t.add_argument("--width", type=int, default=2048)
    t.add_argument("--work", default="/work/full/embed")
    p.add_argument("--json", type=Path, help="also write the result here")
    args = p.parse_args()
    result = {"export": cmd_export, "latency": cmd_latency, "compare": cmd_compare,
              "embed-table": cmd_embed_table}[args.cmd](args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
