"""export(..., preprocess_in_graph=True): for every policy type of the tiny zoo the bundle whose graphs take
uint8 camera frames gives the host-path bundle's actions to <= 1e-5 normalized on ONNX Runtime (5e-5 on OpenVINO)
(fp32), same observations and draws; the torch steps equal the host's numpy ones; the runtime's door refuses
what fixed uint8 inputs cannot take with typed errors; the manifest records it; CLI and bench report it."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tiny_zoo

from lerobot_edge import export, load_policy, registry
from lerobot_edge.bundle import CHECKSUMS, Bundle
from lerobot_edge.errors import BundleError, ObservationError
from lerobot_edge.kernels.image import resize_with_pad
from lerobot_edge.kernels.normalize import action_scale, normalize
from lerobot_edge.testing.checkpoints.tdmpc import write_tdmpc_checkpoint

# normalized action units. OpenVINO folds the in-graph cast/scale/normalize into the first convolution, so its
# float sums run in another order than the host path's: measured up to 1.6e-5 (VQ-BeT), 5e-5 leaves margin.
TOL = {"onnxruntime": 1e-5, "openvino": 5e-5}
BACKENDS = ("onnxruntime", "openvino")
# the tiny TDMPC has no camera (nothing to move into a graph): a camera variant of it, exported both ways
CAMERA_CHECKPOINTS = {"tdmpc": lambda d: write_tdmpc_checkpoint(d, camera=(3, 40, 40), seed=5, use_mpc=False)}
_PAIRS: dict[str, tuple[Path, Path]] = {}


def _export_cli(ckpt: Path, out: Path, policy_type: str) -> Path:
    r = subprocess.run([sys.executable, "-m", "lerobot_edge", "export", str(ckpt), "--output", str(out),
                        "--policy-type", policy_type, "--preprocess-in-graph", "-q"], capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stderr
    return out


def pair(name: str, request) -> tuple[Path, Path]:
    """(host-path bundle, preprocess_in_graph bundle) of the same checkpoint, exported once per process (the
    host one is the zoo's; ACT's in-graph one through the CLI flag)."""
    if name not in _PAIRS:
        root = request.getfixturevalue("tmp_path_factory").mktemp(f"pig_{name}")
        if name in CAMERA_CHECKPOINTS:
            ckpt = CAMERA_CHECKPOINTS[name](root / "ckpt")
            host = export(ckpt, root / "host")
        else:
            host = tiny_zoo.tiny_bundle(name, request)
            ckpt = Path(Bundle.open(host).manifest["source"]["path"])
        kind = Bundle.open(host).manifest["policy"]["type"]   # the suite's ACT checkpoint omits "type"
        in_graph = (_export_cli(ckpt, root / "in_graph", kind) if name == "act"
                    else export(ckpt, root / "in_graph", policy_type=kind, preprocess_in_graph=True))
        _PAIRS[name] = host, in_graph
    return _PAIRS[name]


def _noise(policy, rng: np.random.Generator, batch: int | None):
    shape = [*([batch] if batch else []), *policy.manifest["noise_shape"][1:]] if policy.manifest["noise_shape"] \
        else None
    if policy.noise_kind == "normal" and shape:
        return rng.standard_normal(shape).astype(np.float32)
    return rng.random(shape) if policy.noise_kind == "uniform" and shape else None


def _calls(name: str, policy, rng: np.random.Generator) -> list[tuple[dict | None, object]]:
    """Two unbatched chunks (histories advance), a reset (None), one batch of 2; VLAs: one chunk with the first
    camera missing (the present one moves to slot 0, its frames graph must follow it)."""
    from lerobot_edge.runtime.observations import random_batch, random_observation

    spec, task = policy.observation_spec, ({"task": "pick the red cube"} if policy.takes_task else {})
    calls = [({**random_observation(spec, rng), **task}, _noise(policy, rng, None)) for _ in range(2)]
    calls += [(None, None), ({**random_batch(spec, rng, 2), **task}, _noise(policy, rng, 2))]
    if policy.takes_task:
        obs = {**random_observation(spec, rng), **task}
        del obs[next(k for k, s in spec.items() if s["kind"] == "image")]
        calls += [(None, None), (obs, _noise(policy, rng, None))]
    return calls


# every policy whose registry entry takes preprocess_in_graph (groot does not: its Eagle preprocessing quantizes
# frames to uint8 and resizes them bicubic-antialiased, which stays on the host)
PIG_TYPES = [n for n in tiny_zoo.POLICY_TYPES if "preprocess_in_graph" in registry.POLICIES[n].export_options]


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", PIG_TYPES)
def test_same_actions_as_the_host_path(name, backend, request):
    host_bundle, in_graph_bundle = pair(name, request)
    host, pig = tiny_zoo.load(host_bundle, backend=backend), tiny_zoo.load(in_graph_bundle, backend=backend)
    assert pig.manifest["preprocess"]["in_graph"] and "preprocess" not in host.manifest
    key = host.action_key
    scale = np.atleast_1d(action_scale(host.manifest["normalization"].get(key, "IDENTITY"),
                                       host.bundle.stats().get(key, {})))
    worst = 0.0
    for obs, noise in _calls(name, host, np.random.default_rng(0)):
        if obs is None:
            host.reset(), pig.reset()
            continue
        a, b = host.predict_action_chunk(obs, noise=noise), pig.predict_action_chunk(obs, noise=noise)
        assert a.shape == b.shape
        d = scale.shape[-1]
        worst = max(worst, float(np.abs((a[..., :d] - b[..., :d]) / scale).max()))
        np.testing.assert_array_equal(a[..., d:], b[..., d:])   # SAC's discrete gripper column: an index
    print(f"{name} {backend}: max |host - in_graph| / scale = {worst:.3g}")
    assert worst <= TOL[backend]


# ------------------------------------------------------------------------------------ torch == numpy host


def _host_steps(frames: np.ndarray, mode: str, stats: dict, legacy: bool, size: int | None, center: bool,
                clamp: bool) -> np.ndarray:
    """The runtime's own numpy path: observations._image, Normalizer, flow._prepare."""
    x = frames.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255.0)
    x = normalize(x, mode, {k: v.reshape(-1, 1, 1) for k, v in stats.items()}, legacy).astype(np.float32)
    if size is None:
        return x
    return resize_with_pad(x, size, center, clamp=clamp) * np.float32(2.0) - np.float32(1.0)


@pytest.mark.parametrize("frame, mode, legacy, size, center, clamp", [
    ((48, 64), "MEAN_STD", False, None, True, True), ((40, 56), "MIN_MAX", False, None, True, True),
    ((40, 56), "MIN_MAX", True, None, True, True), ((32, 32), "QUANTILES", False, None, True, True),
    ((96, 128), "IDENTITY", False, 224, True, True), ((64, 64), "IDENTITY", False, 224, True, True),
    ((224, 100), "IDENTITY", False, 224, True, True),      # only padding: the host skips the interpolation
    ((480, 640), "IDENTITY", False, 224, True, True), ((300, 500), "IDENTITY", False, 64, False, False),
    ((64, 64), "IDENTITY", False, 64, False, False)])       # the model's size: nothing but the [-1, 1] scaling
def test_frame_ops_equal_the_host_arithmetic(frame, mode, legacy, size, center, clamp):
    import torch

    from lerobot_edge.policies.common.preprocess import FrameOps
    from lerobot_edge.policies.plan import FrameSteps

    rng = np.random.default_rng(1)
    stats = {"mean": rng.random(3, dtype=np.float32), "std": rng.random(3, dtype=np.float32) + 0.1,
             "min": rng.random(3, dtype=np.float32) - 1, "max": rng.random(3, dtype=np.float32) + 1,
             "q01": rng.random(3, dtype=np.float32) - 1, "q99": rng.random(3, dtype=np.float32) + 1}
    frames = rng.integers(0, 256, (2, *frame, 3), dtype=np.uint8)
    steps = FrameSteps(normalize=mode != "IDENTITY", resize_with_pad=size, center=center, clamp=clamp,
                       signed=size is not None, fuse=size is None)
    ops = FrameOps(steps, frame, mode, stats, legacy)
    with torch.inference_mode():
        got = ops(torch.from_numpy(frames)).numpy()
    want = _host_steps(frames, mode, stats, legacy, size, center, clamp)
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


# ------------------------------------------------------------------------------------ the runtime's door


@pytest.mark.slow
def test_manifest_records_it_and_the_door_refuses_what_the_graphs_cannot_take(request):
    host_bundle, bundle = pair("act", request)
    m = Bundle.open(bundle).manifest
    cams = [k for k, o in m["observations"].items() if o["kind"] == "image"]
    assert all(m["observations"][k]["frame"] == "uint8_hwc" for k in cams)
    act = next(g for g in m["graphs"] if g["name"] == "act")
    inputs = {i["name"]: i for i in act["inputs"]}
    c, h, w = m["observations"][cams[0]]["shape"]
    assert inputs[cams[0]]["dtype"] == "uint8" and inputs[cams[0]]["shape"] == ["batch", h, w, c]
    assert inputs["observation.state"]["dtype"] == "float32"   # the state stays normalized on the host
    assert m["preprocess"]["cameras"][cams[0]] == {"graph": "act", "input": cams[0], "frame": [h, w, c],
                                                   "normalize": m["normalization"][cams[0]]}
    assert m["validation"]["passed"] is True
    p = load_policy(bundle)
    obs = tiny_zoo_obs(p)
    with pytest.raises(ObservationError, match=rf"{cams[0]}.*preprocess_in_graph.*uint8"):
        p.predict_action_chunk({**obs, cams[0]: obs[cams[0]].transpose(2, 0, 1).astype(np.float32) / 255})
    with pytest.raises(ObservationError, match=rf"{cams[0]}.*exactly \({h}, {w}, {c}\)"):
        p.predict_action_chunk({**obs, cams[0]: obs[cams[0]][:-2]})
    host = load_policy(host_bundle)   # float CHW images stay welcome on a host-path bundle
    host.predict_action_chunk({**obs, cams[0]: obs[cams[0]].transpose(2, 0, 1).astype(np.float32) / 255})


def tiny_zoo_obs(policy) -> dict:
    from lerobot_edge.runtime.observations import random_observation

    obs = random_observation(policy.observation_spec, np.random.default_rng(3))
    return {**obs, "task": "pick the red cube"} if policy.takes_task else obs


@pytest.mark.slow
def test_vla_frames_have_the_size_fixed_at_export(request):
    """The host path resizes any frame size; the in-graph bundle's frames graphs take the checkpoint's size."""
    host_bundle, bundle = pair("pi0", request)
    host, p = load_policy(host_bundle, seed=0), load_policy(bundle, seed=0)
    obs = tiny_zoo_obs(p)
    cam = next(k for k, s in p.observation_spec.items() if s["kind"] == "image")
    other = {**obs, cam: np.zeros((50, 70, 3), np.uint8)}
    host.predict_action_chunk(other)
    with pytest.raises(ObservationError, match=rf"{cam}.*exactly"):
        p.predict_action_chunk(other)
    graphs = {g["name"] for g in p.manifest["graphs"]}
    assert {c["graph"] for c in p.manifest["preprocess"]["cameras"].values()} <= graphs


def _reseal(path: Path) -> None:
    lines = []
    for line in (path / CHECKSUMS).read_text().splitlines():
        _, rel = line.split("  ", 1)
        lines.append(f"{hashlib.sha256((path / rel).read_bytes()).hexdigest()}  {rel}")
    (path / CHECKSUMS).write_text("\n".join(lines) + "\n")


@pytest.mark.slow
@pytest.mark.parametrize("tamper", ["drop_frame_flag", "drop_camera_entry", "flag_on_host_bundle"])
def test_a_manifest_that_disagrees_with_its_graphs_is_refused_at_load(tamper, request, tmp_path):
    host_bundle, bundle = pair("act", request)
    dst = tmp_path / "b"
    shutil.copytree(host_bundle if tamper == "flag_on_host_bundle" else bundle, dst)
    m = json.loads((dst / "manifest.json").read_text())
    cam = next(k for k, o in m["observations"].items() if o["kind"] == "image")
    if tamper == "drop_frame_flag":
        del m["observations"][cam]["frame"]
    elif tamper == "drop_camera_entry":
        del m["preprocess"]["cameras"][cam]
    else:
        m["observations"][cam]["frame"] = "uint8_hwc"
    (dst / "manifest.json").write_text(json.dumps(m))
    _reseal(dst)
    with pytest.raises(BundleError, match=cam):
        load_policy(dst)


def test_refused_without_a_camera(tmp_path):
    ckpt = write_tdmpc_checkpoint(tmp_path / "ckpt", seed=5)
    with pytest.raises(ValueError, match="no camera input"):
        export(ckpt, tmp_path / "b", preprocess_in_graph=True)
    assert not (tmp_path / "b").exists()


@pytest.mark.slow
def test_validate_and_bench_report_it(request, tmp_path):
    """validate --against rebuilds the in-graph graphs; bench reports the host preprocess stage and the bytes
    handed to the engine (uint8 frames: a quarter of the float32 images' bytes)."""
    from lerobot_edge.api import validate_bundle
    from lerobot_edge.bench import BenchConfig, run_bench

    host_bundle, bundle = pair("act", request)
    ckpt = Bundle.open(bundle).manifest["source"]["path"]
    assert validate_bundle(bundle, ckpt)["passed"]
    cfg = BenchConfig(backends=("onnxruntime",), iterations=2, warmup=1)
    rows = {b: run_bench(b, cfg, workdir=tmp_path / b.name)["results"][0] for b in (host_bundle, bundle)}
    host, pig = rows[host_bundle], rows[bundle]
    assert (host["preprocess"], pig["preprocess"], pig["name"]) == ("host", "in_graph", "onnxruntime/fp32/in_graph")
    assert "preprocess" in pig["stages"] and "preprocess" in host["stages"]
    m = Bundle.open(bundle).manifest
    image_bytes = sum(int(np.prod(o["shape"])) for o in m["observations"].values() if o["kind"] == "image")
    assert host["bytes_to_engine_per_chunk"] - pig["bytes_to_engine_per_chunk"] == 3 * image_bytes


@pytest.mark.slow
def test_lerobot_dropin_hands_lerobot_float_images_back_as_frames(request):
    """LeRobot's loops pass float CHW images (its uint8 frames / 255): the drop-in turns them back into the
    exact frames for an in-graph bundle, so both bundles give the same actions inside LeRobot's scripts."""
    from lerobot_edge.robots import LeRobotPolicy

    host_bundle, bundle = pair("act", request)
    host, pig = LeRobotPolicy.from_bundle(str(host_bundle)), LeRobotPolicy.from_bundle(str(bundle))
    frames = tiny_zoo_obs(host.policy)
    batch = {k: (v.transpose(2, 0, 1).astype(np.float32) / np.float32(255.0) if v.dtype == np.uint8 else v)[None]
             for k, v in frames.items()}
    np.testing.assert_allclose(pig.predict_action_chunk(batch), host.predict_action_chunk(batch), rtol=0, atol=1e-5)
