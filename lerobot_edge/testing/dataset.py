"""Writes a small LeRobot v3 dataset (parquet + mp4, LeRobot's paths and column names) for replay tests."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np


def write_v3_dataset(root: Path, *, cameras: dict[str, tuple[int, int]], state_dim: int, action_dim: int,
                     episode_lengths: list[int], fps: int = 10, seed: int = 0) -> Path:
    """cameras: key -> (H, W). All episodes in one data file and one video file per camera, as LeRobot packs them."""
    import av
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    root = Path(root)
    features = {
        "observation.state": {"dtype": "float32", "shape": [state_dim], "names": None},
        "action": {"dtype": "float32", "shape": [action_dim], "names": None},
        **{k: {"dtype": "video", "shape": [h, w, 3], "names": ["height", "width", "channels"]}
           for k, (h, w) in cameras.items()},
        "timestamp": {"dtype": "float32", "shape": [1], "names": None},
        "frame_index": {"dtype": "int64", "shape": [1], "names": None},
        "episode_index": {"dtype": "int64", "shape": [1], "names": None},
        "index": {"dtype": "int64", "shape": [1], "names": None},
        "task_index": {"dtype": "int64", "shape": [1], "names": None},
    }
    info = {"codebase_version": "v3.0", "robot_type": "sim", "fps": fps, "total_episodes": len(episode_lengths),
            "total_frames": sum(episode_lengths), "chunks_size": 1000,
            "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
            "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
            "features": features}
    (root / "meta").mkdir(parents=True, exist_ok=True)
    (root / "meta" / "info.json").write_text(json.dumps(info, indent=2))
    rows = {k: [] for k in ("observation.state", "action", "timestamp", "frame_index", "episode_index", "index",
                            "task_index")}
    episodes, start = [], 0
    for ep, n in enumerate(episode_lengths):
        for i in range(n):
            rows["observation.state"].append(rng.normal(size=state_dim).astype(np.float32).tolist())
            rows["action"].append(rng.normal(size=action_dim).astype(np.float32).tolist())
            rows["timestamp"].append(i / fps)
            rows["frame_index"].append(i)
            rows["episode_index"].append(ep)
            rows["index"].append(start + i)
            rows["task_index"].append(0)
        meta = {"episode_index": ep, "length": n, "data/chunk_index": 0, "data/file_index": 0,
                "dataset_from_index": start, "dataset_to_index": start + n, "tasks": ["insert the peg"]}
        for k in cameras:
            meta.update({f"videos/{k}/chunk_index": 0, f"videos/{k}/file_index": 0,
                         f"videos/{k}/from_timestamp": start / fps, f"videos/{k}/to_timestamp": (start + n) / fps})
        episodes.append(meta)
        start += n
    for rel, table in (("data/chunk-000/file-000.parquet", pa.table(rows)),
                       ("meta/episodes/chunk-000/file-000.parquet", pa.Table.from_pylist(episodes))):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, root / rel)
    for k, (h, w) in cameras.items():
        path = root / "videos" / k / "chunk-000" / "file-000.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        with av.open(str(path), "w") as out:
            stream = out.add_stream("mpeg4", rate=fps)
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            stream.time_base = Fraction(1, fps)
            for i in range(start):
                img = (rng.random((h, w, 3)) * 255).astype(np.uint8)
                frame = av.VideoFrame.from_ndarray(img, format="rgb24")
                frame.pts = i
                for packet in stream.encode(frame):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
    return root
