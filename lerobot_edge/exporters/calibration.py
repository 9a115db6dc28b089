"""int8 calibration on real observations: what every graph of a policy sees when the robot runs it.

    calibration source (a LeRobot v3 dataset directory, or an .npz of observations)
      -> observations (load_observations)
      -> the runtime's own preprocessing and host loop on the fp32 ONNX graphs (ONNX Runtime CPU), every
         session wrapped in a recorder (record_feeds): Diffusion's and the flow policies' denoise inputs are the
         ones met along a real sampling trajectory with seeded noise, not random x_t
      -> per-graph feeds, batch 1 each, handed to the converters as `options["calibration_samples"]`, a
         callable (graph name) -> list[dict[input name, ndarray]] (OpenVINO's NNCF, TensorRT/ORT Q/DQ).

An .npz holds one array per observation key (LeRobot feature names, or robot keys of the export's rename
map), leading axis = samples: state (N, D); images (N, H, W, 3) uint8 RGB frames or (N, 3, H, W) float in
[0, 1]; an optional `task` (N,) string array for language-conditioned policies. Samples of an .npz are fed
in order as one episode; a dataset's episodes each start from `reset()`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import numpy as np

from ..bundle import Bundle
from ..errors import ObservationError

log = logging.getLogger(__name__)
MAX_OBSERVATIONS = 32     # observations run through the policy
MAX_FEEDS = 64            # feeds kept per graph (evenly over what was recorded: every step of a trajectory kind)
MAX_EPISODES = 4          # dataset episodes sampled (each decoded whole)
SEED = 0                  # the runtime's noise seed while recording
HELD_OUT = 8              # recorded feeds per graph kept out of the int8 ranges (at most a quarter): the
                          # converters' checks and the export gate's `<graph>@recorded` entries run on them

Episodes = list[list[dict[str, Any]]]


def load_observations(source: str | Path, keys: set[str], limit: int = MAX_OBSERVATIONS) -> Episodes:
    """Observations of `source` grouped by episode, at most `limit` in all. keys: the observation keys the
    policy accepts (features and rename-map sources); `task` is kept where present."""
    path = Path(source).expanduser()
    if path.is_dir():
        return _from_dataset(path, keys, limit)
    if path.is_file() and path.suffix == ".npz":
        return _from_npz(path, keys, limit)
    raise ObservationError(f"calibration {str(source)!r}: expected a LeRobot v3 dataset directory "
                           "(meta/info.json, data/, videos/) or an .npz of observations")


def _from_npz(path: Path, keys: set[str], limit: int) -> Episodes:
    try:
        z = np.load(path, allow_pickle=False)
        arrays = {k: z[k] for k in z.files}
    except Exception as e:
        raise ObservationError(f"calibration {path}: cannot read the .npz ({type(e).__name__}: {e})") from e
    wanted = {k: v for k, v in arrays.items() if k in keys or k == "task"}
    if not any(k in keys for k in wanted):
        raise ObservationError(f"calibration {path}: no observation key of this policy (has {sorted(arrays)}, "
                               f"expected some of {sorted(keys)})")
    lengths = {k: (v.shape[0] if v.ndim else None) for k, v in wanted.items()}
    for k, n in lengths.items():
        if not n:
            raise ObservationError(f"calibration {path}: {k!r} must have a leading samples axis of length >= 1, "
                                   f"got shape {list(wanted[k].shape)}")
        if k != "task" and not (np.issubdtype(wanted[k].dtype, np.number) or wanted[k].dtype == bool):
            raise ObservationError(f"calibration {path}: {k!r} has dtype {wanted[k].dtype}, expected numbers")
    if len(set(lengths.values())) > 1:
        raise ObservationError(f"calibration {path}: keys disagree on the number of samples: {lengths}")
    n = next(iter(lengths.values()))
    picks = _spread(n, limit)
    return [[{k: (str(v[i]) if k == "task" else v[i]) for k, v in wanted.items()} for i in picks]]


def _from_dataset(root: Path, keys: set[str], limit: int) -> Episodes:
    from ..dataset import LeRobotDataset

    ds = LeRobotDataset(root)
    indices = sorted(ds.episodes)
    chosen = [indices[i] for i in _spread(len(indices), min(MAX_EPISODES, limit))]
    per = max(1, limit // len(chosen))
    episodes: Episodes = []
    for index in chosen:
        ep = ds.episode(index)
        task = (ds.episodes[index].get("tasks") or [None])[0]
        frames = [obs for obs, _ in ds.frames(ep)]
        picks = _spread(len(frames), per)
        episodes.append([{**{k: v for k, v in frames[i].items() if k in keys},
                          **({"task": str(task)} if task is not None else {})} for i in picks])
    if not any(episodes):
        raise ObservationError(f"calibration {root}: the dataset has no frames")
    return episodes


def split_held_out(feeds: list) -> tuple[list, list]:
    """A graph's recorded feeds -> (calibration feeds, held-out feeds: the last min(HELD_OUT, N // 4))."""
    held = min(HELD_OUT, len(feeds) // 4)
    return feeds[:len(feeds) - held], feeds[len(feeds) - held:]


def _spread(n: int, k: int) -> list[int]:
    """k indices spread evenly over range(n) (all of them when n <= k)."""
    return list(range(n)) if n <= k else sorted({int(round(i)) for i in np.linspace(0, n - 1, k)})


class RecordingSession:
    """A backend session that keeps a copy of every numpy feed it runs, split into batch-1 feeds where the
    graph's leading axis is dynamic (what the converters calibrate on)."""

    def __init__(self, inner):
        self.inner, self.graph, self.feeds = inner, inner.graph, []

    def run(self, inputs: Mapping[str, Any], *, keep: tuple[str, ...] = ()) -> dict[str, Any]:
        feed = {k: np.array(v.numpy() if hasattr(v, "numpy") else v) for k, v in inputs.items()}
        self.feeds.extend(_batch1(self.graph, feed))
        return self.inner.run(inputs, keep=keep)


def _batch1(graph, feed: dict[str, np.ndarray]) -> Iterator[dict[str, np.ndarray]]:
    dynamic = all(i.shape and isinstance(i.shape[0], str) for i in graph.inputs)
    sizes = {v.shape[0] for v in feed.values() if v.ndim}
    if not dynamic or len(sizes) != 1:
        yield feed
        return
    for b in range(sizes.pop()):
        yield {k: v[b:b + 1] for k, v in feed.items()}


def record_feeds(bundle: Bundle, episodes: Episodes, progress=None) -> dict[str, list[dict[str, np.ndarray]]]:
    """Run `episodes` through the bundle's runtime on its fp32 ONNX with ONNX Runtime (CPU), recording every
    graph's feeds; -> graph name -> at most MAX_FEEDS batch-1 feeds."""
    from ..backends import get_backend
    from ..registry import runtime_class

    runner = get_backend("onnxruntime")()
    sessions = {n: RecordingSession(runner.load(s, bundle, {})) for n, s in bundle.graphs.items()}
    cls = runtime_class(bundle.manifest["runtime"]["kind"])
    policy = cls(bundle, "onnxruntime", sessions, {"seed": SEED} if cls.stochastic else {})
    takes_task = getattr(policy, "takes_task", False)
    for episode in episodes:
        policy.reset()
        for obs in episode:
            if not takes_task:
                obs = {k: v for k, v in obs.items() if k != "task"}
            elif "task" not in obs:
                obs = {**obs, "task": ""}
            policy.predict_action_chunk(obs)
    out = {}
    for name, s in sessions.items():
        out[name] = [s.feeds[i] for i in _spread(len(s.feeds), MAX_FEEDS)]
        log.info("calibration: %d feeds recorded for graph '%s' (%d kept)", len(s.feeds), name, len(out[name]))
    return out


def calibration_samples(source: str | Path, bundle: Bundle, keys: set[str]
                        ) -> Callable[[str], list[dict[str, np.ndarray]]]:
    """The converters' `options["calibration_samples"]`: recorded once, then graph name -> its feeds."""
    feeds = record_feeds(bundle, load_observations(source, keys))
    empty = sorted(n for n, f in feeds.items() if not f)
    if empty:
        log.warning("calibration: graph(s) %s never ran on these observations; they calibrate on synthetic inputs",
                    empty)

    def samples(graph: str) -> list[dict[str, np.ndarray]]:
        return list(feeds.get(graph, []))
    return samples
