"""default_output_dir: where `export` writes without --output, named from the source (torch-free)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lerobot_edge.paths import default_output_dir


def test_hub_id_gives_repo_name_and_target():
    assert default_output_dir("lerobot/act_aloha_sim_insertion_human", "trt") == Path("act_aloha_sim_insertion_human-trt")
    assert default_output_dir("lerobot/act_aloha_sim_insertion_human", "onnx", "fp32") == \
        Path("act_aloha_sim_insertion_human-onnx")


def test_precision_is_appended_unless_fp32():
    assert default_output_dir("lerobot/diffusion_pusht", "openvino", "bf16") == Path("diffusion_pusht-openvino-bf16")
    assert default_output_dir("lerobot/diffusion_pusht", "trt", "fp16") == Path("diffusion_pusht-trt-fp16")


def test_local_dir_gives_its_name_and_is_relative_to_cwd(tmp_path, monkeypatch):
    ckpt = tmp_path / "my_act"
    ckpt.mkdir()
    assert default_output_dir(ckpt, "onnx") == Path("my_act-onnx")
    assert default_output_dir(f"{ckpt}/", "trt") == Path("my_act-trt")
    monkeypatch.chdir(ckpt)
    assert default_output_dir(".", "onnx") == Path("my_act-onnx")


def test_existing_local_dir_wins_over_a_hub_id_of_the_same_spelling(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "myrun" / "weights").mkdir(parents=True)
    assert default_output_dir("myrun/weights", "onnx") == Path("weights-onnx")
    (tmp_path / "myrun" / "pretrained_model").mkdir()
    assert default_output_dir("myrun/pretrained_model", "onnx") == Path("myrun-onnx")  # not "pretrained_model-onnx"


@pytest.mark.parametrize("run", ["13-45-10_act_foo", "act_foo"])  # LeRobot's default run dir / --output_dir=...
def test_lerobot_training_layout_gives_job_and_step(tmp_path, run):
    ckpts = tmp_path / "outputs" / "train" / "2025-01-02" / run / "checkpoints"
    (ckpts / "010000" / "pretrained_model").mkdir(parents=True)
    assert default_output_dir(ckpts / "010000" / "pretrained_model", "onnx") == Path("act_foo-010000-onnx")
    os.symlink("010000", ckpts / "last")  # as LeRobot links it: relative to checkpoints/
    assert default_output_dir(ckpts / "last" / "pretrained_model", "trt") == Path("act_foo-010000-trt")


def test_a_copied_last_dir_keeps_its_name(tmp_path):
    d = tmp_path / "act_bar" / "checkpoints" / "last" / "pretrained_model"
    d.mkdir(parents=True)
    assert default_output_dir(d, "openvino", "int8") == Path("act_bar-last-openvino-int8")
