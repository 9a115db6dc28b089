"""The Python-backend models of a `lerobot-edge triton` repository (serving/triton_repo.py), run by NVIDIA
Triton's Python backend: `ChunkModel` runs our numpy runtime (observation checks, normalization, the
sampler/Euler loop, RTC) with every graph call a BLS request to the graph's own Triton model, so the graphs
run on Triton's native backends and batch across robots; `InfoModel` answers RemotePolicy's manifest query.

`triton_python_backend_utils` exists only inside Triton; it is imported when a model initializes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..bundle import Bundle, GraphSpec
from ..errors import BackendUnavailableError, LeRobotEdgeError
from ..registry import runtime_class
from . import protocol as P
from .handler import ChunkService


def _pb():
    import triton_python_backend_utils as pb_utils   # provided by Triton's Python backend

    return pb_utils


class BLSSession:
    """Session.run for one graph: a BLS request to its Triton model. Outputs come back as numpy (`keep` is
    accepted and ignored: a KV cache crosses as a tensor between Triton models)."""

    def __init__(self, graph: GraphSpec, model: str, pb_utils: Any):
        self.graph, self.model, self.pb = graph, model, pb_utils
        self.outputs = [o.name for o in graph.outputs]

    def run(self, inputs: Mapping[str, Any], *, keep: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
        tensors = [self.pb.Tensor(i.name, np.ascontiguousarray(inputs[i.name])) for i in self.graph.inputs]
        response = self.pb.InferenceRequest(model_name=self.model, requested_output_names=self.outputs,
                                            inputs=tensors).exec()
        if response.has_error():
            raise BackendUnavailableError(f"Triton model {self.model!r}: {response.error().message()}")
        return {n: self.pb.get_output_tensor_by_name(response, n).as_numpy() for n in self.outputs}


def _bundle_dir(args: Mapping[str, str]) -> Path:
    return Path(args["model_repository"]) / args["model_version"] / "bundle"


def _parameters(config: Mapping[str, Any]) -> dict[str, str]:
    return {k: v["string_value"] for k, v in config.get("parameters", {}).items()}


class ChunkModel:
    """The chunk model: requests as in serving/protocol.py, answered by a ChunkService."""

    def initialize(self, args: Mapping[str, str]) -> None:
        pb = _pb()
        config = json.loads(args["model_config"])
        prefix = _parameters(config)["graph_model_prefix"]
        bundle = Bundle.open(_bundle_dir(args), verify=False)
        bundle.verify(["common"])
        sessions = {g.name: BLSSession(g, prefix + g.name, pb) for g in bundle.graphs.values()}
        cls = runtime_class(bundle.manifest["runtime"]["kind"])
        policy = cls(bundle, "triton", sessions, {})
        self.service = ChunkService(policy)
        self.inputs = [i["name"] for i in config["input"]]
        self.pb = pb

    def execute(self, requests: list) -> list:
        batch = []
        for r in requests:
            inputs = {}
            for name in self.inputs:
                t = self.pb.get_input_tensor_by_name(r, name)
                if t is not None:
                    inputs[name] = t.as_numpy()
            try:
                params = json.loads(r.parameters() or "{}")
            except (TypeError, ValueError):
                params = {}
            batch.append((inputs, params))
        try:
            out = self.service.handle(batch)
        except LeRobotEdgeError as e:   # a BLS failure: every request of this batch gets it
            out = [self.service.refused(inputs, e) for inputs, _ in batch]
        return [self.pb.InferenceResponse(output_tensors=[self.pb.Tensor(k, v) for k, v in o.items()]) for o in out]

    def finalize(self) -> None:
        self.service = None


class InfoModel:
    """`<name>_info`: the manifest and action stats of the chunk model's bundle."""

    def initialize(self, args: Mapping[str, str]) -> None:
        self.pb = _pb()
        config = json.loads(args["model_config"])
        chunk = _parameters(config)["bundle_model"]
        repo = Path(args["model_repository"]).parent
        bundle = Bundle.open(repo / chunk / args["model_version"] / "bundle", verify=False)
        bundle.verify(["common"])
        key = bundle.manifest["action"]["key"]
        rtc = bool((bundle.manifest["runtime"].get("rtc") or {}).get("enabled"))   # ChunkModel loads the default
        self.payload = P.info_payload(bundle.manifest, bundle.stats().get(key, {}), rtc)

    def execute(self, requests: list) -> list:
        return [self.pb.InferenceResponse(output_tensors=[
            self.pb.Tensor(P.INFO_OUTPUT, np.array([self.payload], dtype=object))]) for _ in requests]

    def finalize(self) -> None:
        pass
