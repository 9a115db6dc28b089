"""The public Python API of the workstation side: `export` (LeRobot checkpoint -> validated bundle) and
`validate_bundle`. Thin: the pipeline is `exporters/pipeline.py`, the accuracy gate `exporters/validate.py`.
The CLI's `export` and `validate --against` call exactly these."""

from __future__ import annotations

from pathlib import Path

from .progress import ProgressLike

__all__ = ["export", "validate_bundle"]


def export(source: str | Path, output: str | Path | None = None, target: str = "onnx", *, policy_type: str | None = None,
           revision: str | None = None, precision: str = "fp32", opset: int = 18, validate: bool = True,
           accept_accuracy: bool = False, tokenizer: str | None = None, vlm: str | None = None,
           base: str | None = None, rename_map: dict | None = None, calibration: str | None = None,
           rtc_exact: bool = False, fuse_loop: bool = False, preprocess_in_graph: bool = False,
           overwrite: bool = False, progress: ProgressLike = None) -> Path:
    """Export a LeRobot checkpoint (local dir or Hub repo id) to a bundle directory `output`; -> its path.
    output=None: ./<name>-<target>[-<precision>], <name> from the source (paths.default_output_dir), e.g.
    `act_aloha_sim_insertion_human-trt`; an existing one is refused unless overwrite=True.

    target: "onnx" | "openvino" | "trt" (registry.TARGETS); precision: one the target takes. Every graph is
    validated against our PyTorch module on seeded random inputs with the target's backend (and, for policies
    with a host loop, a sampled chunk end to end); the results go into the manifest. A failed gate raises
    ValidationError after the bundle is written (unless accept_accuracy=True), so the failing bundle can be
    inspected but will not load by default.

    Policy options: tokenizer (VLAs: tokenizer.json file, directory or Hub id), vlm (SmolVLA: the VLM config
    when vlm_model_name cannot be reached), rtc_exact (pi family: the `denoise_rtc` graph), fuse_loop
    (Diffusion DDIM: one graph), base (the base of a PEFT/LoRA checkpoint), rename_map (robot key -> feature).
    preprocess_in_graph (every policy with cameras): the graphs take the camera frames as uint8 HWC RGB of the
    checkpoint's feature size and cast, scale, normalize and (VLAs) resize/pad them themselves; the runtime
    then skips those host steps (policies/common/preprocess.py).
    calibration (int8/fp8 only): a LeRobot v3 dataset directory or an .npz of observations (one array per
    observation key, leading axis = samples); the observations run through the runtime's preprocessing and
    host loop on the fp32 graphs and every graph is calibrated on the feeds it really receives
    (exporters/calibration.py). Without it int8 calibrates on seeded synthetic inputs (warned).
    progress: a `lerobot_edge.progress.Progress`, or a callable given each phase's message (default: logged).
    """
    from .exporters.pipeline import export_bundle  # torch from here on

    return export_bundle(source, output, target, policy_type=policy_type, revision=revision, precision=precision,
                         opset=opset, validate=validate, accept_accuracy=accept_accuracy, tokenizer=tokenizer,
                         base=base, rename_map=rename_map, calibration=calibration, overwrite=overwrite,
                         progress=progress, vlm=vlm, rtc_exact=rtc_exact, fuse_loop=fuse_loop,
                         preprocess_in_graph=preprocess_in_graph)


def validate_bundle(bundle: str | Path, against: str | Path, *, backend: str | None = None,
                    policy_type: str | None = None, revision: str | None = None,
                    backend_options: dict | None = None, progress: ProgressLike = None) -> dict:
    """Re-run the export validation of `bundle` against the checkpoint `against` (local dir or Hub id); -> the
    report (as stored in manifests, plus "same_weights"). Raises ValidationError when a graph fails."""
    from .exporters.validate import validate_bundle as run  # torch from here on

    return run(bundle, against, backend=backend, policy_type=policy_type, revision=revision,
               backend_options=backend_options, progress=progress)
