"""Program state (Core ML state, iOS 18) for the MIL executor: declarations, the state object, and which
slice writes may update a state in place.

A stateful function declares its states as inputs of type ``state`` (a KV cache converted from a torch
buffer written in place). ``MILExecutor.make_state()`` creates a ``ProgramState`` from those declarations,
zero-filled; every ``run(..., state=...)`` reads and updates it, so it persists across calls and can be
shared by the functions of one program that declare the same states (a prefill and a decode function),
as a Core ML ``MLState`` is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from coremltools.converters.mil.mil import types


class StateError(ValueError):
    """A state that does not belong to the program or function it was given to, or none where one is
    needed (the message names what was expected and what came)."""


@dataclass(frozen=True)
class StateSpec:
    """A declared state: its name, shape and MIL dtype name."""

    name: str
    shape: tuple
    dtype: str

    def __str__(self) -> str:
        return f"{self.name} {self.shape} {self.dtype}"


def state_specs(function) -> tuple[StateSpec, ...]:
    """The state declarations of a MIL function (its inputs of type ``state``), in input order."""
    specs = []
    for name, var in function.inputs.items():
        if types.is_state(var.sym_type):
            wrapped = var.sym_type.wrapped_type()
            shape = tuple(int(d) for d in wrapped.get_shape())
            specs.append(StateSpec(name, shape, types.builtin_to_string(wrapped.get_primitive())))
    return tuple(specs)


class StateCell:
    """The mutable box a state input is passed to the kernels in: ``value`` is the state's tensor."""

    __slots__ = ("name", "value")

    def __init__(self, name: str, value: torch.Tensor):
        self.name, self.value = name, value

    def __repr__(self) -> str:
        return f"StateCell({self.name!r}, shape={tuple(self.value.shape)}, dtype={self.value.dtype})"


class ProgramState:
    """The states of one program, made by ``MILExecutor.make_state()`` and kept between calls.

    ``read(name)`` returns a copy of a state's content as a numpy array (as the program declares it:
    fp16 states come back as float16 unless the executor runs in fp32 mode); ``write(name, array)``
    replaces it (same shape). ``specs`` are the declarations it was made from.
    """

    def __init__(self, specs, program, mode: str, where: str, tensors: dict):
        self.specs = tuple(specs)
        self.program, self.mode, self.where = program, mode, where
        self._cells = {spec.name: StateCell(spec.name, tensors[spec.name]) for spec in self.specs}

    @property
    def names(self) -> list[str]:
        return [spec.name for spec in self.specs]

    def cell(self, name: str) -> StateCell:
        return self._cells[name]

    def _spec(self, name: str) -> StateSpec:
        for spec in self.specs:
            if spec.name == name:
                return spec
        raise StateError(f"no state {name!r}: this state holds {self.names}")

    def read(self, name: str) -> np.ndarray:
        spec, tensor = self._spec(name), self._cells[name].value
        array = tensor.detach().numpy().copy()
        return array.astype(np.float16) if spec.dtype == "fp16" and self.mode != "fp32" else array

    def write(self, name: str, array) -> None:
        spec, cell = self._spec(name), self._cells[name]
        value = torch.as_tensor(np.asarray(array))
        if tuple(value.shape) != spec.shape:
            raise StateError(f"state {name!r}: expected shape {spec.shape}, got {tuple(value.shape)}")
        if spec.dtype == "fp16" and self.mode == "fp16_storage":
            value = value.to(torch.float16)  # fp16 values, fp32 storage: round once
        cell.value.copy_(value.to(cell.value.dtype))

    def __repr__(self) -> str:
        return f"ProgramState({', '.join(map(str, self.specs))}; made by {self.where}, mode {self.mode})"


def check_state(state, specs, program, mode: str, where: str) -> None:
    """Raise ``StateError`` unless ``state`` was made for this program, these declarations and mode."""
    declared = ", ".join(map(str, specs)) or "none"
    if not specs:
        if state is not None:
            raise StateError(f"{where} declares no state; got {state!r}")
        return
    if state is None:
        raise StateError(
            f"{where} declares states ({declared}): pass state=executor.make_state() (made once, reused "
            "across calls), got none"
        )
    if not isinstance(state, ProgramState):
        raise StateError(f"{where}: expected a ProgramState made by make_state(), got {type(state).__name__}")
    if state.program is not program:
        raise StateError(
            f"{where}: expected a state made by this program's make_state() (states {declared}), got a "
            f"state made by another model ({state.where}: {', '.join(map(str, state.specs))})"
        )
    if tuple(state.specs) != tuple(specs):
        raise StateError(
            f"{where}: expected a state with the declarations {declared}, got one made by {state.where} "
            f"({', '.join(map(str, state.specs))}): the functions declare different states"
        )
    if state.mode != mode:
        raise StateError(f"{where}: expected a state made in mode {mode!r}, got one made in {state.mode!r}")


# Ops whose output may be (a view of) an input: anything downstream of a state read through them still
# sees the state's memory.
_MAY_ALIAS = {"cast", "identity", "pad"}
_OWN_TENSOR = ("read_state", "coreml_update_state")  # ops whose output is the state's tensor itself


def in_place_slice_updates(function, view_ops) -> set[str]:
    """Names of the ``slice_update`` ops that may write their state's tensor in place.

    A slice_update ``u = slice_update(x=read_state(S), ...)`` (or of an earlier update of S) whose only use is
    ``coreml_update_state(state=S, value=u)`` can write into S's own tensor, unless something else still
    needs S's old content: every value that may share S's memory (reads of S, values computed from them
    by ops that may return views, ``view_ops``, and earlier updates of S) must be dead by then, no read of
    S may sit between the write and the update, the update itself must not come from S, and no function
    output may share S's memory. Then the decode step writes one slot instead of copying the cache."""
    ops = list(function.operations)
    readers: dict[str, list[int]] = {}
    for position, op in enumerate(ops):
        for value in op.inputs.values():
            for var in value if isinstance(value, (list, tuple)) else [value]:
                readers.setdefault(var.name, []).append(position)
    for var in function.outputs:
        readers.setdefault(var.name, []).append(len(ops))
    chosen = set()
    for state_name, state_var in function.inputs.items():
        if not types.is_state(state_var.sym_type):
            continue
        aliases: dict[str, int] = {}  # var name -> position of the op defining it
        reads_of_state = [
            i for i, op in enumerate(ops) if op.op_type == "read_state" and op.input.name == state_name
        ]
        for position, op in enumerate(ops):
            sources = [
                v
                for value in op.inputs.values()
                for v in (value if isinstance(value, (list, tuple)) else [value])
            ]
            touches = any(v.name in aliases for v in sources) and (
                op.op_type in view_ops or op.op_type in _MAY_ALIAS or op.op_type == "slice_update"
            )
            if (
                position in reads_of_state
                or touches
                or (op.op_type == "coreml_update_state" and op.state.name == state_name)
            ):
                for var in op.outputs:
                    aliases[var.name] = position
            if op.op_type != "slice_update" or op.x.name not in aliases:
                continue
            x = op.x.name
            # x must be the state's own tensor: a read of S, or the result of an earlier update of S
            # (coreml_update_state returns the tensor the state now holds).
            if ops[aliases[x]].op_type not in _OWN_TENSOR or op.update.name in aliases:
                continue
            out_readers = readers.get(op.outputs[0].name, [])
            if len(out_readers) != 1 or out_readers[0] == len(ops):
                continue
            update = ops[out_readers[0]]
            if update.op_type != "coreml_update_state" or update.state.name != state_name:
                continue
            if any(position < i < out_readers[0] for i in reads_of_state):
                continue
            live = [
                name
                for name, defined in aliases.items()
                if defined < position and name != x and max(readers.get(name, [-1])) >= position
            ]
            if live or max(readers.get(x, [-1])) > position or readers[x].count(position) > 1:
                continue
            chosen.add(op.name)
    return chosen
