"""Device-resident I/O for ONNX Runtime: one IOBinding per input signature, with its buffers on the session's
device (CUDA for the CUDA / TensorRT providers, the host for the CPU provider) allocated once and reused by
every later run of that signature.

- numpy inputs are copied into the signature's own input buffers (`OrtValue.update_inplace`: the address never
  changes, which ORT's CUDA graphs require);
- device handles (outputs an earlier run kept, e.g. pi0's KV cache or Diffusion's global_cond) are bound where
  they are: no host round trip between the prefix and the ten denoise steps;
- outputs go to the signature's output buffers: those in `keep` come back as the buffer itself (valid until
  the next run of this session with the same signature), the others are copied to a fresh numpy array;
- with CUDA graphs (`cuda_graph=True`) each signature gets its own `gpu_graph_id`, so a new batch size or a
  handle at another address is captured anew instead of replaying a graph that reads stale buffers.

ORT's CPU provider runs the same code (buffers on "cpu"), which is how the binding logic is tested here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from ..bundle import GraphSpec
from ..errors import BackendUnavailableError, ObservationError

# ORT element types -> numpy (the ones our graphs use at their boundaries)
ORT_NUMPY = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
             "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int8)": np.int8,
             "tensor(uint8)": np.uint8, "tensor(bool)": np.bool_}
MAX_SIGNATURES = 8   # distinct input signatures (batch sizes, handle addresses) one session keeps buffers for


@dataclass
class Slot:
    """The binding and buffers of one input signature. `outputs[name]` is None for an output whose shape the
    inputs do not determine (ORT allocates it on the device each run)."""

    binding: Any
    inputs: dict[str, Any]
    outputs: dict[str, Any | None]
    run_options: Any
    bound_handles: dict[str, Any] = field(default_factory=dict)
    spare: dict[str, Any] = field(default_factory=dict)   # second output buffers, for outputs fed back as inputs
    runs: int = 0


class BoundRunner:
    """Runs `session` through IOBinding with buffers on (device_type, device_id)."""

    def __init__(self, ort, session, graph: GraphSpec, device_type: str = "cpu", device_id: int = 0,
                 cuda_graph: bool = False):
        self.ort, self.session, self.graph = ort, session, graph
        self.device_type, self.device_id, self.cuda_graph = device_type, int(device_id), bool(cuda_graph)
        self._in_types = {i.name: _numpy_type(i.type, i.name) for i in session.get_inputs()}
        self._out_types = {o.name: _numpy_type(o.type, o.name) for o in session.get_outputs()}
        self._outputs = [o.name for o in graph.outputs]
        self.slots: dict[tuple, Slot] = {}

    def run(self, inputs: Mapping[str, Any], keep: tuple[str, ...] = ()) -> dict[str, Any]:
        """inputs: numpy arrays or OrtValues (handles) -> outputs, `keep` ones as OrtValues on the device."""
        sig = self.signature(inputs)
        slot = self.slots.get(sig) or self._new_slot(sig, inputs)
        for name, value in inputs.items():
            if isinstance(value, np.ndarray):
                slot.inputs[name].update_inplace(np.ascontiguousarray(value, dtype=self._in_types[name]))
            elif slot.bound_handles.get(name) is not value:
                slot.binding.bind_ortvalue_input(name, value)
                slot.bound_handles[name] = value   # also keeps the producer's buffer alive while bound
        self._unalias(slot, inputs)
        self.session.run_with_iobinding(slot.binding, slot.run_options)
        slot.runs += 1
        produced = None
        out = {}
        for i, name in enumerate(self._outputs):
            value = slot.outputs[name]
            if value is None:
                produced = produced if produced is not None else slot.binding.get_outputs()
                value = produced[i]
            out[name] = value if name in keep else self._to_host(value)
        return out

    def signature(self, inputs: Mapping[str, Any]) -> tuple:
        """Shapes of the numpy inputs; for handles their shape and, under CUDA graphs, their address (a graph
        replays the addresses it captured)."""
        parts = []
        for name in sorted(inputs):
            v = inputs[name]
            if isinstance(v, np.ndarray):
                parts.append((name, "host", tuple(v.shape)))
            elif _is_ortvalue(self.ort, v):
                parts.append((name, "handle", tuple(v.shape()), v.data_ptr() if self.cuda_graph else None))
            else:
                raise ObservationError(f"graph {self.graph.name!r} input {name!r}: expected a numpy array or an "
                                       f"onnxruntime OrtValue kept by an earlier run, got {type(v).__name__}")
        return tuple(parts)

    # -- buffers -----------------------------------------------------------------------------------
    def _new_slot(self, sig: tuple, inputs: Mapping[str, Any]) -> Slot:
        if len(self.slots) >= MAX_SIGNATURES:
            # under CUDA graphs every signature holds a captured graph; without, its buffers: drop the oldest
            if self.cuda_graph:
                raise BackendUnavailableError(
                    f"graph {self.graph.name!r}: more than {MAX_SIGNATURES} distinct input shapes/addresses with "
                    "cuda_graph=True; keep the batch size fixed or load without cuda_graph")
            self.slots.pop(next(iter(self.slots)))
        dims = self._symbols(inputs)
        binding = self.session.io_binding()
        slot_in = {}
        for name, value in inputs.items():
            if isinstance(value, np.ndarray):
                slot_in[name] = self._alloc(value.shape, self._in_types[name])
                binding.bind_ortvalue_input(name, slot_in[name])
        slot_out: dict[str, Any | None] = {}
        for spec in self.graph.outputs:
            shape = [dims.get(d) if isinstance(d, str) else d for d in spec.shape]
            if any(d is None for d in shape):
                if self.cuda_graph:
                    raise BackendUnavailableError(
                        f"graph {self.graph.name!r} output {spec.name!r} has shape {list(spec.shape)}, which its "
                        "inputs do not fix; cuda_graph=True needs every output preallocated")
                binding.bind_output(spec.name, self.device_type, self.device_id)
                slot_out[spec.name] = None
            else:
                slot_out[spec.name] = self._alloc(shape, self._out_types[spec.name])
                binding.bind_ortvalue_output(spec.name, slot_out[spec.name])
        run_options = self.ort.RunOptions()
        if self.cuda_graph:
            run_options.add_run_config_entry("gpu_graph_id", str(len(self.slots)))
        slot = Slot(binding, slot_in, slot_out, run_options)
        self.slots[sig] = slot
        return slot

    def _unalias(self, slot: Slot, inputs: Mapping[str, Any]) -> None:
        """An input handle that is this slot's own output buffer (x <- f(x) kept on the device) would be read
        while it is written: that output moves to a second buffer, and the two alternate from then on."""
        ptrs = {v.data_ptr() for v in inputs.values() if not isinstance(v, np.ndarray)}
        for name, buf in slot.outputs.items():
            if buf is not None and buf.data_ptr() in ptrs:
                spare = slot.spare.get(name) or self._alloc(buf.shape(), self._out_types[name])
                slot.spare[name], slot.outputs[name] = buf, spare
                slot.binding.bind_ortvalue_output(name, spare)

    def _alloc(self, shape, dtype):
        return self.ort.OrtValue.ortvalue_from_shape_and_type([int(d) for d in shape], dtype, self.device_type,
                                                              self.device_id)

    def _symbols(self, inputs: Mapping[str, Any]) -> dict[str, int]:
        """Named (dynamic) dims -> their sizes in this call, read off the inputs ('batch' -> 2)."""
        dims: dict[str, int] = {}
        for spec in self.graph.inputs:
            value = inputs[spec.name]
            shape = value.shape if isinstance(value, np.ndarray) else tuple(value.shape())
            for d, n in zip(spec.shape, shape):
                if isinstance(d, str):
                    dims.setdefault(d, int(n))
        return dims

    def _to_host(self, value) -> np.ndarray:
        arr = value.numpy()
        # a host buffer's numpy() is a view of the buffer the next run overwrites; a device one is a fresh copy
        return arr.copy() if self.device_type == "cpu" else arr


def _numpy_type(ort_type: str, name: str):
    if ort_type not in ORT_NUMPY:
        raise BackendUnavailableError(f"IOBinding: graph IO {name!r} has element type {ort_type}, which lerobot-edge "
                                      "does not bind (float, float16, double, int64, int32, int8, uint8, bool)")
    return ORT_NUMPY[ort_type]


def _is_ortvalue(ort, v) -> bool:
    return isinstance(v, ort.OrtValue)
