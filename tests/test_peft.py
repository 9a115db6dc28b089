"""PEFT/LoRA fine-tunes: an adapter saved by the real `peft` library on top of a base ACT (our module has
LeRobot's exact names, so the adapter keys are what LeRobot 0.6 writes) is merged exactly and exported."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from lerobot_edge import export, load_policy
from lerobot_edge.checkpoint import load_checkpoint
from lerobot_edge.errors import CheckpointError
from lerobot_edge.policies import build_plan

peft = pytest.importorskip("peft", reason="the PEFT tests need the peft package (pip install peft)")

TARGETS = ["linear1", "out_proj", "action_head", "encoder_img_feat_input_proj", "decoder_pos_embed"]


@pytest.fixture(scope="module")
def adapter(act_tiny_checkpoint, tmp_path_factory):
    """A LoRA fine-tune directory as LeRobot 0.6 saves one: adapter files + config + processors."""
    base = build_plan(load_checkpoint(act_tiny_checkpoint, policy_type="act")).graphs[0].module
    cfg = peft.LoraConfig(r=4, lora_alpha=8, target_modules=TARGETS, modules_to_save=["encoder_latent_input_proj"],
                          rank_pattern={"action_head": 2}, alpha_pattern={"action_head": 6})
    model = peft.get_peft_model(base, cfg)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # lora_B starts at zero: train it a little, at random
        for name, p in model.named_parameters():
            if "lora_" in name or "modules_to_save" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    out = tmp_path_factory.mktemp("peft") / "act_lora"
    model.save_pretrained(out)
    for f in act_tiny_checkpoint.iterdir():
        if f.name != "model.safetensors":
            shutil.copy(f, out / f.name)
    cfg_json = json.loads((out / "adapter_config.json").read_text())
    cfg_json["base_model_name_or_path"] = str(act_tiny_checkpoint)
    (out / "adapter_config.json").write_text(json.dumps(cfg_json))
    merged = {k: v.numpy() for k, v in model.merge_and_unload().state_dict().items()}
    return out, merged


def test_merge_equals_peft_merge_and_unload(adapter):
    path, merged = adapter
    ours = load_checkpoint(path, policy_type="act").load_weights()
    assert set(merged) <= set(ours)
    worst = max(float(np.abs(ours[k] - merged[k]).max()) for k in merged)
    assert worst < 1e-6
    changed = [k for k in merged if "action_head" in k or "decoder_pos_embed" in k]
    assert changed  # the adapter really moved the weights it targets


def test_export_of_a_lora_checkpoint_runs_the_merged_policy(adapter, act_tiny_bundle, tmp_path):
    path, _ = adapter
    bundle = export(path, tmp_path / "b", policy_type="act")
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["validation"]["passed"] is True
    obs = {"observation.state": np.ones(6, np.float32), "observation.images.top": np.zeros((48, 64, 3), np.uint8)}
    tuned = load_policy(bundle).predict_action_chunk(obs)
    base = load_policy(act_tiny_bundle).predict_action_chunk(obs)
    assert np.abs(tuned - base).max() > 1e-2  # the fine-tune changes the actions


def test_adapter_without_a_base_is_named(adapter, act_tiny_checkpoint, tmp_path):
    path, _ = adapter
    bare = tmp_path / "bare"
    shutil.copytree(path, bare)
    cfg = json.loads((bare / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = None
    (bare / "adapter_config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="--base"):
        load_checkpoint(bare, policy_type="act")
    assert load_checkpoint(bare, policy_type="act", base=act_tiny_checkpoint).base_path == act_tiny_checkpoint.resolve()
