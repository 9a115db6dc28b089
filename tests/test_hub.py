"""Bundles on the Hub, exercised against a local directory standing in for it (no network here): offline
huggingface_hub returns the per-user local_dir copy, which is verified like any bundle."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from huggingface_hub import ModelCard

from lerobot_edge.bundle import Bundle
from lerobot_edge.hub import model_card

LOAD = """
import sys, numpy as np
from lerobot_edge import load_policy
p = load_policy("someone/act-tiny-edge")
print(p.bundle.path)
print(p.select_action({"observation.state": np.zeros(6), "observation.images.top": np.zeros((48, 64, 3), np.uint8)}).shape)
assert not [m for m in sys.modules if m.startswith("lerobot_edge.checkpoint")]  # the download is hub.py's
"""


def _run(code: str, cache) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "LEROBOT_EDGE_CACHE": str(cache)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)


@pytest.fixture
def hub_copy(act_tiny_bundle, tmp_path):
    """What a download of only the onnxruntime file sets leaves in the per-user cache."""
    local = tmp_path / "cache" / "bundles" / "someone--act-tiny-edge" / "main"
    local.mkdir(parents=True)
    b = Bundle.open(act_tiny_bundle)
    for rel in ["manifest.json", "checksums.sha256", *b.manifest["files"]["common"], *b.manifest["files"]["onnx"]]:
        (local / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(act_tiny_bundle / rel, local / rel)
    return tmp_path / "cache", local


def test_load_policy_from_a_repo_id(hub_copy):
    cache, local = hub_copy
    r = _run(LOAD, cache)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(local.resolve()), "(4,)"]


def test_a_tampered_download_is_refused(hub_copy):
    cache, local = hub_copy
    data = local / "act.onnx.data"
    data.write_bytes(data.read_bytes()[:-8] + b"\x00" * 8)
    r = _run(LOAD, cache)
    assert r.returncode != 0 and "BundleError" in r.stderr and "checksum mismatch" in r.stderr


def test_push_fails_cleanly_offline(act_tiny_bundle, tmp_path):
    code = ("from lerobot_edge.cli.main import main; import sys\n"
            f"sys.exit(main(['push', {str(act_tiny_bundle)!r}, 'someone/act-tiny-edge']))")
    r = _run(code, tmp_path)
    assert r.returncode == 3 and "HubUnavailableError" in r.stderr


def test_model_card_says_what_and_how(act_tiny_bundle):
    card = model_card(Bundle.open(act_tiny_bundle), "someone/act-tiny-edge")
    # ModelCardData writes its keys in its own (alphabetical) order, so license is not the first line
    assert card.startswith("---\n") and "\nlicense: other\n" in card
    meta = ModelCard(card).data
    assert meta.library_name == "lerobot-edge" and {"lerobot", "robotics", "act", "onnx"} <= set(meta.tags)
    assert meta.base_model is None                          # exported from a local directory
    assert 'load_policy("someone/act-tiny-edge")' in card and "act.onnx" in card
    assert "ok   act.action" in card and "weights sha256" in card


def test_model_card_of_a_hub_checkpoint_names_its_base_and_license(act_tiny_bundle):
    b = Bundle.open(act_tiny_bundle)
    b.manifest["source"].update(repo_id="lerobot/act_tiny", revision="abc123", license="apache-2.0")
    card = model_card(b, "someone/act-tiny-edge")
    meta = ModelCard(card).data
    assert meta.base_model == "lerobot/act_tiny" and meta.license == "apache-2.0"
    assert "`lerobot/act_tiny` @ `abc123`" in card
