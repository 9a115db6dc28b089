"""The host path's fast forms give the same numbers as LeRobot's formulas, and a call served from the action
queue still checks everything while converting nothing (runtime/observations.check_observation)."""

from __future__ import annotations

import numpy as np
import pytest

from lerobot_edge import load_policy
from lerobot_edge.errors import ObservationError
from lerobot_edge.kernels.normalize import normalize, normalize_frames
from lerobot_edge.runtime.observations import all_finite, frames_to_float, random_observation

RNG = np.random.default_rng(0)
FRAMES = RNG.integers(0, 256, (2, 5, 7, 3), dtype=np.uint8)   # (B, H, W, C)


def _stats(shape) -> dict[str, np.ndarray]:
    lo = RNG.uniform(-0.2, 0.3, shape).astype(np.float32)
    return {"mean": lo, "std": RNG.uniform(0.1, 0.4, shape).astype(np.float32), "min": lo, "max": lo + 0.7,
            "q01": lo, "q99": lo + 0.5, "q10": lo, "q90": lo + 0.4}


@pytest.mark.parametrize("mode", ["MEAN_STD", "MIN_MAX", "QUANTILES", "QUANTILE10", "IDENTITY"])
@pytest.mark.parametrize("shape", [(3, 1, 1), (3, 5, 7)])
@pytest.mark.parametrize("legacy", [False, True])
def test_fused_frame_normalization_is_bit_identical(mode, shape, legacy):
    stats = _stats(shape)
    want = normalize(frames_to_float(FRAMES), mode, stats, legacy)
    got = normalize_frames(FRAMES, mode, stats, legacy)
    assert got.shape == (2, 3, 5, 7) and got.dtype == np.float32
    np.testing.assert_array_equal(got, want)
    # the per-channel loop of `normalize` against numpy's plain broadcast
    x = frames_to_float(FRAMES)
    a, b = stats["mean"], stats["std"]
    if mode == "MEAN_STD":
        np.testing.assert_array_equal(normalize(x, mode, stats), (x - a) / (b + np.float32(1e-8)))


def test_all_finite_sees_every_nonfinite_and_overflowing_sums():
    x = np.full((3, 64, 64), 0.5, np.float32)
    assert all_finite(x)
    for bad in (np.nan, np.inf, -np.inf):
        y = x.copy()
        y[2, 63, 17] = bad
        assert not all_finite(y)
    assert all_finite(np.full(8, 3e38, np.float32))   # the sum overflows, every element is finite
    y = np.array([np.inf, -np.inf], np.float32)
    assert not all_finite(y)


def test_queued_select_action_checks_without_converting(act_tiny_bundle):
    """Once a chunk is queued, select_action converts nothing (no preprocess output reaches a graph), yet every
    bad observation is still refused with the key named, and the queue is left as it was."""
    policy = load_policy(act_tiny_bundle)
    assert policy.n_action_steps > 2
    obs = random_observation(policy.observation_spec, np.random.default_rng(1))
    first = policy.select_action(obs)
    assert policy.graph_calls["act"] == 1
    cam = next(k for k, s in policy.observation_spec.items() if s["kind"] == "image")
    c, h, w = policy.observation_spec[cam]["shape"]
    bad_image = np.full((c, h, w), 0.5, np.float32)
    bad_image[1, h // 2, w // 3] = np.nan
    hostile = {"missing camera": {k: v for k, v in obs.items() if k != cam},
               "wrong shape": {**obs, cam: obs[cam][:-1]},
               "NaN": {**obs, cam: bad_image},
               "wrong dtype": {**obs, cam: obs[cam].astype(np.int16)}}
    queued = len(policy.queue)
    for what, bad in hostile.items():
        with pytest.raises(ObservationError, match=cam):
            policy.select_action(bad)
        assert len(policy.queue) == queued, what
    second = policy.select_action(obs)
    assert policy.graph_calls["act"] == 0 and second.shape == first.shape
    # the same actions as a policy that converts on every call: the chunk's second action
    chunk = load_policy(act_tiny_bundle).predict_action_chunk(obs)
    np.testing.assert_allclose(second, chunk[1], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("hw, out", [((96, 128), (168, 224)), ((40, 40), (224, 224)), ((480, 640), (168, 224)),
                                     ((7, 5), (3, 11))])
def test_resize_is_the_two_tap_sum_bit_for_bit(hw, out):
    """kernels/image.resize_bilinear (np.take, width then height) against the per-output two-tap formula."""
    from lerobot_edge.kernels.image import bilinear_taps, resize_bilinear

    img = RNG.random((2, 3, *hw), dtype=np.float32)
    h0, h1, hl0, hl1 = bilinear_taps(hw[0], out[0])
    w0, w1, wl0, wl1 = bilinear_taps(hw[1], out[1])
    rows0, rows1 = img[:, :, h0], img[:, :, h1]
    top = rows0[..., w0] * wl0 + rows0[..., w1] * wl1
    bot = rows1[..., w0] * wl0 + rows1[..., w1] * wl1
    np.testing.assert_array_equal(resize_bilinear(img, *out), top * hl0[:, None] + bot * hl1[:, None])


@pytest.mark.parametrize("shape, size, center", [((1, 3, 480, 640), 512, False), ((2, 3, 96, 128), 224, True),
                                                 ((1, 3, 224, 224), 224, True), ((1, 3, 300, 200), 224, True)])
def test_pad_resize_reuses_its_arrays_bit_for_bit(shape, size, center):
    """kernels/image.PadResize (the VLA host path: buffers kept between calls, padding signed once) equals a
    fresh one-shot resize_with_pad(...) * 2 - 1 (checked against torch in test_pi0/test_smolvla) on every call, also on an HWC-ordered (non-contiguous) input, and allocates
    its output once per input shape (a same-size input is never returned: the caller's array stays as it is)."""
    from lerobot_edge.kernels.image import PadResize, resize_with_pad

    resize = PadResize(size, center, signed=True)
    outs = []
    for k in range(3):
        img = RNG.random(shape, dtype=np.float32)
        img = np.ascontiguousarray(img.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2) if k == 1 else img
        before = img.copy()
        got = resize(img)
        want = resize_with_pad(img, size, center) * np.float32(2.0) - np.float32(1.0)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(img, before)
        outs.append(got)
    resized = shape[-2:] != (size, size)
    assert (outs[0] is outs[2]) == resized and not np.shares_memory(outs[0], before)
