"""Diffusion Policy export extras: the end-to-end sampled-chunk validation, `fuse_loop` (the DDIM loop in one
graph) against the stepped runtime, and the in-graph resize that every backend runs alike."""

from __future__ import annotations

import json

import numpy as np
import pytest
from lerobot_edge.testing.checkpoints.diffusion import write_diffusion_checkpoint

from lerobot_edge import export, load_policy


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    root = tmp_path_factory.mktemp("diffusion_fused")
    ckpt = write_diffusion_checkpoint(root / "ckpt", seed=5)
    return ckpt, export(ckpt, root / "stepped"), export(ckpt, root / "fused", fuse_loop=True)


def _obs(rng, batch=2):
    return {"observation.state": rng.normal(size=(batch, 3)).astype(np.float32),
            "observation.image": rng.integers(0, 256, (batch, 32, 32, 3), dtype=np.uint8)}


def test_validation_covers_the_sampled_chunk(bundles):
    _, stepped, fused = bundles
    for bundle, graphs in ((stepped, ["encoder", "denoise"]), (fused, ["denoise_loop"])):
        m = json.loads((bundle / "manifest.json").read_text())
        assert [g["name"] for g in m["graphs"]] == graphs
        v = m["validation"]
        assert v["passed"] is True and v["graphs"]["sampled_chunk"]["passed"] is True
        assert any(line.startswith("ok   sampled_chunk.action") for line in v["lines"])


def test_fused_loop_equals_the_stepped_runtime(bundles):
    _, stepped, fused = bundles
    assert json.loads((fused / "manifest.json").read_text())["runtime"]["kind"] == "diffusion_fused"
    rng = np.random.default_rng(0)
    obs = [_obs(rng) for _ in range(6)]
    noise = rng.standard_normal((2, 8, 2)).astype(np.float32)
    a, b = load_policy(stepped), load_policy(fused)
    np.testing.assert_allclose(b.predict_action_chunk(obs[0], noise=noise), a.predict_action_chunk(obs[0], noise=noise),
                               atol=1e-4)
    a.reset()
    b.reset()
    for o in obs:  # history and action queue behave alike: one chunk per n_action_steps calls
        np.testing.assert_allclose(b.select_action(o, noise=noise), a.select_action(o, noise=noise), atol=1e-4)
    assert b.timings["denoise_loop"] == 0.0  # the last call came from the queue


def test_fused_step_count_is_fixed(bundles):
    _, _, fused = bundles
    with pytest.raises(ValueError, match="fused at 5 steps"):
        load_policy(fused, num_inference_steps=10)
    assert load_policy(fused, num_inference_steps=5) is not None


def test_validate_bundle_rebuilds_the_fused_plan(bundles):
    from lerobot_edge.api import validate_bundle

    ckpt, _, fused = bundles
    report = validate_bundle(fused, ckpt)
    assert report["passed"] and sorted(report["graphs"]) == ["denoise_loop", "sampled_chunk"]


def test_fuse_loop_refused_where_it_cannot_apply(tmp_path, act_tiny_checkpoint):
    ddpm = write_diffusion_checkpoint(tmp_path / "ddpm", noise_scheduler_type="DDPM", num_inference_steps=None)
    with pytest.raises(ValueError, match="fuse_loop unrolls DDIM"):
        export(ddpm, tmp_path / "b_ddpm", fuse_loop=True)
    with pytest.raises(ValueError, match=r"\['fuse_loop'\] are not supported for act"):
        export(act_tiny_checkpoint, tmp_path / "b_act", policy_type="act", fuse_loop=True)


@pytest.mark.parametrize("size_in,size_out", [((60, 80), (48, 64)), ((32, 40), (45, 50)), ((24, 24), (24, 24))])
def test_resize_matrices_equal_torch_antialiased_bilinear(size_in, size_out):
    torch = pytest.importorskip("torch")
    from lerobot_edge.policies.common.rgb_encoder import resize_matrix

    x = torch.randn(2, 3, *size_in)
    want = torch.nn.functional.interpolate(x, size=size_out, mode="bilinear", antialias=True, align_corners=False)
    got = resize_matrix(size_in[0], size_out[0]) @ x @ resize_matrix(size_in[1], size_out[1]).T
    assert float((got - want).abs().max()) < 1e-5


def test_resize_runs_as_matmuls_in_the_graph(tmp_path):
    """OpenVINO ignores an ONNX Resize's antialias attribute (0.2-0.7 error measured): no Resize in the graph."""
    onnx = pytest.importorskip("onnx")
    ckpt = write_diffusion_checkpoint(tmp_path / "ckpt", cameras={"observation.image": (3, 40, 48)},
                                      resize_shape=[30, 36], crop_ratio=0.9, crop_shape=[27, 32])  # as LeRobot saves it
    bundle = export(ckpt, tmp_path / "b", validate=False)
    ops = {n.op_type for n in onnx.load(str(bundle / "encoder.onnx"), load_external_data=False).graph.node}
    assert "Resize" not in ops and "MatMul" in ops


def test_crop_settings_follow_lerobot(tmp_path):
    from lerobot_edge.checkpoint import load_checkpoint
    from lerobot_edge.errors import CheckpointError
    from lerobot_edge.policies.diffusion.config import DiffusionConfig

    ckpt = write_diffusion_checkpoint(tmp_path / "c", cameras={"observation.image": (3, 40, 48)},
                                      resize_shape=[30, 36], crop_ratio=1.0, crop_shape=None)
    path = ckpt / "config.json"
    body = json.loads(path.read_text())
    path.write_text(json.dumps({**body, "crop_shape": [20, 20]}))  # LeRobot drops it: resize + ratio 1 = no crop
    assert DiffusionConfig.from_checkpoint(load_checkpoint(ckpt)).crop_shape is None
    path.write_text(json.dumps({**body, "resize_shape": None, "crop_shape": [44, 44]}))
    with pytest.raises(CheckpointError, match="does not fit"):
        DiffusionConfig.from_checkpoint(load_checkpoint(ckpt))
