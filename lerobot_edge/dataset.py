"""Read recorded episodes of a LeRobot dataset (v3 layout) as observations + recorded actions, torch-free.

    meta/info.json                                  fps, features, data_path / video_path templates
    meta/episodes/chunk-000/file-000.parquet        per episode: data/chunk_index, data/file_index,
                                                    videos/<key>/{chunk_index,file_index,from_timestamp}
    data/chunk-000/file-000.parquet                 one row per frame: timestamp, episode_index, state, action…
    videos/<key>/chunk-000/file-000.mp4             camera frames (decoded with PyAV), many episodes per file

Needs pyarrow and av (`pip install 'lerobot-edge[dataset]'`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import CheckpointError, HubUnavailableError

DATASET_PATTERNS = ["meta/**", "data/**", "videos/**"]


def _require():
    try:
        import av
        import pyarrow.parquet as pq
    except ImportError as e:
        raise ImportError("dataset replay needs pyarrow and av: pip install 'lerobot-edge[dataset]'") from e
    return pq, av


@dataclass
class Episode:
    index: int
    rows: dict[str, np.ndarray]          # column -> (T, ...) values of this episode
    video: dict[str, tuple[Path, float]]  # camera key -> (mp4 file, from_timestamp)


class LeRobotDataset:
    """A local (or downloaded) v3 dataset directory."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        info = self.root / "meta" / "info.json"
        if not info.is_file():
            raise CheckpointError(f"{self.root}: not a LeRobot v3 dataset (no meta/info.json)")
        self.info = json.loads(info.read_text())
        if not str(self.info.get("codebase_version", "v3")).startswith("v3"):
            raise CheckpointError(f"{self.root}: dataset format {self.info.get('codebase_version')} is not v3.x; "
                                  "convert it with LeRobot's v2.1 -> v3.0 script")
        self.fps = float(self.info["fps"])
        self.features = self.info["features"]
        self.video_keys = [k for k, f in self.features.items() if f.get("dtype") == "video"]
        pq, _ = _require()
        files = sorted((self.root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
        if not files:
            raise CheckpointError(f"{self.root}: no meta/episodes/*/*.parquet")
        tables = [pq.read_table(f).to_pylist() for f in files]
        self.episodes = {int(e["episode_index"]): e for t in tables for e in t}

    @classmethod
    def open(cls, source: str | Path, revision: str | None = None) -> "LeRobotDataset":
        p = Path(source).expanduser()
        if p.is_dir():
            return cls(p)
        from huggingface_hub import snapshot_download
        try:
            return cls(snapshot_download(str(source), repo_type="dataset", revision=revision))
        except Exception as e:
            raise HubUnavailableError(f"{source}: cannot download the dataset ({type(e).__name__}: {e})") from e

    def _path(self, template_key: str, **kw) -> Path:
        return self.root / self.info[template_key].format(**kw)

    def episode(self, index: int) -> Episode:
        pq, _ = _require()
        if index not in self.episodes:
            raise CheckpointError(f"episode {index} not in the dataset (has {len(self.episodes)}: "
                                  f"{min(self.episodes)}..{max(self.episodes)})")
        e = self.episodes[index]
        data = self._path("data_path", chunk_index=e["data/chunk_index"], file_index=e["data/file_index"])
        table = pq.read_table(data, filters=[("episode_index", "=", index)]).to_pydict()
        rows = {k: np.asarray(v, dtype=np.float32 if k not in ("episode_index", "frame_index", "index") else None)
                for k, v in table.items() if k in self.features and self.features[k]["dtype"] != "video"}
        video = {k: (self._path("video_path", video_key=k, chunk_index=e[f"videos/{k}/chunk_index"],
                                file_index=e[f"videos/{k}/file_index"]), float(e[f"videos/{k}/from_timestamp"]))
                 for k in self.video_keys}
        return Episode(index, rows, video)

    def frames(self, ep: Episode) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray | None]]:
        """(observation with LeRobot keys: state vectors, uint8 HWC RGB frames; recorded action) per step."""
        timestamps = ep.rows["timestamp"].reshape(-1)
        cams = {k: _decode(path, start + timestamps, self.fps) for k, (path, start) in ep.video.items()}
        for i in range(len(timestamps)):
            obs = {k: v[i] for k, v in ep.rows.items() if k.startswith("observation.")}
            obs.update({k: frames[i] for k, frames in cams.items()})
            yield obs, (ep.rows["action"][i] if "action" in ep.rows else None)


def _decode(path: Path, times: np.ndarray, fps: float) -> list[np.ndarray]:
    """Frames of `path` nearest to each time (s), as uint8 HWC RGB; frames more than half a frame away are an
    error (the video and the parquet disagree)."""
    _, av = _require()
    tol = 0.5 / fps + 1e-4
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        container.seek(max(0, int((times.min() - 1.0) / stream.time_base)), stream=stream, backward=True)
        decoded: list[tuple[float, np.ndarray]] = []
        for frame in container.decode(stream):
            t = float(frame.pts * stream.time_base)
            if t > times.max() + tol:
                break
            if t >= times.min() - tol:
                decoded.append((t, frame.to_ndarray(format="rgb24")))
    if not decoded:
        raise CheckpointError(f"{path}: no frames between {times.min():.3f}s and {times.max():.3f}s")
    ts = np.array([t for t, _ in decoded])
    out = []
    for t in times:
        j = int(np.abs(ts - t).argmin())
        if abs(ts[j] - t) > tol:
            raise CheckpointError(f"{path}: no frame within half a frame of {t:.3f}s (nearest {ts[j]:.3f}s)")
        out.append(decoded[j][1])
    return out
