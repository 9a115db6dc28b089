"""Typed errors: every failure a user can cause or meet has one, and the CLI maps each to an exit code.

| exception                                   | meaning                                   | CLI exit |
|---------------------------------------------|-------------------------------------------|----------|
| ValidationError, NonFiniteActionError       | an accuracy gate failed / NaN from engine | 1        |
| CheckpointError, BundleError, ObservationError | bad input (also ValueError)            | 2        |
| BackendUnavailableError, HubUnavailableError | missing library, GPU, network, Hub access | 3        |
"""

from __future__ import annotations


class LeRobotEdgeError(Exception):
    """Base of every error lerobot-edge raises on purpose."""

    exit_code = 2


class ValidationError(LeRobotEdgeError):
    """An exported graph (or engine) does not reproduce the PyTorch reference within tolerance."""

    exit_code = 1

    def __init__(self, message: str, report: object | None = None):
        super().__init__(message)
        self.report = report


class NonFiniteActionError(LeRobotEdgeError):
    """An engine produced NaN or inf: the action is never returned."""

    exit_code = 1


class CheckpointError(LeRobotEdgeError, ValueError):
    """A LeRobot checkpoint is missing files, has inconsistent config/weights or bad stats."""


class BundleError(LeRobotEdgeError, ValueError):
    """A bundle is corrupt, tampered with, incompatible or from a newer lerobot-edge."""


class ObservationError(LeRobotEdgeError, ValueError):
    """An observation has a missing key, wrong shape or dtype, or non-finite values."""


class BackendUnavailableError(LeRobotEdgeError):
    """The requested backend library, device, GPU or TensorRT is not available here."""

    exit_code = 3


class HubUnavailableError(LeRobotEdgeError):
    """The Hugging Face Hub cannot be reached, or the repo is missing or gated."""

    exit_code = 3


class PrecisionUnsupportedError(BackendUnavailableError):
    """The device cannot run the precision a bundle was exported at (fp8 on a GPU without fp8 tensor cores)."""
