"""Run a MIL program (the body of a Core ML ML Program) on torch CPU tensors, on any platform.

At construction the program is turned into a flat plan: constants are decoded once into torch tensors,
ops whose inputs are all constant are evaluated once (unless ``fold_constants=False``), and every remaining
op becomes one step (kernel, fixed keyword arguments, input slots, output slots, slots to free). ``run``
then only walks the plan.

Precision modes (see ``MODES``) decide how the program's fp16 values are stored and computed.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from coremltools.converters.mil.mil import Program, types
from coremltools.converters.mil.mil.types.symbolic import is_symbolic

from . import constant_store
from .inputs import InputSpec, check_input_names, validated_array
from .kernels import KERNELS
from .program import load_program
from .state import ProgramState, check_state, in_place_slice_updates, state_specs

MODES = {
    "fp32": "every float value is stored and computed in fp32 (fp16 declarations and casts are ignored)",
    "fp16_storage": "every op computes in fp32 from its inputs; outputs declared fp16 are rounded to fp16",
    "fp16_native": "values declared fp16 are torch.float16 and ops run torch's float16 kernels "
    "(GEMMs run in fp32 and round once, which is what torch's CPU fp16 GEMMs do, 100x faster)",
}


class UnsupportedOpError(NotImplementedError):
    """The program contains an op this executor has no kernel for."""


@dataclass(frozen=True)
class OpInfo:
    """Where an op sits: its position among the function's operations, its name, type and output names."""

    position: int
    name: str
    op_type: str
    output_names: tuple


_TORCH_INT_DTYPES = {
    types.int8: torch.int8,
    types.uint8: torch.uint8,
    types.int16: torch.int16,
    types.uint16: torch.int32,
    types.int32: torch.int32,
    types.int64: torch.int64,
    types.bool: torch.bool,
    # compressed constants: sub-byte values arrive unpacked, one per element (see kernels/constexpr.py)
    types.int4: torch.int8,
    types.uint1: torch.uint8,
    types.uint2: torch.uint8,
    types.uint3: torch.uint8,
    types.uint4: torch.uint8,
    types.uint6: torch.uint8,
    types.uint32: torch.int64,
}


def _dtype_name(builtin) -> str:
    return types.builtin_to_string(builtin)


def _python_value(value):
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _mil_dtype(var):
    return var.dtype if types.is_tensor(var.sym_type) else var.sym_type


def _program_uses_fp16(function) -> bool:
    if any(_mil_dtype(var) == types.fp16 for var in function.inputs.values()):
        return True
    return any(_mil_dtype(out) == types.fp16 for op in function.operations for out in op.outputs)


class MILExecutor:
    """Executes one function of a MIL program.

    ``program_or_path``: a MIL ``Program``, a coremltools ``MLModel`` or a path to an ``.mlpackage``.
    ``mode``: one of ``MODES``; by default "fp16_storage" when the program holds fp16 values, else "fp32".
    ``fold_constants``: evaluate ops whose inputs are all constant once, at construction (default). With
    False they run on every call like any other op, so ``run``'s ``observe`` sees them (the hazard finder
    needs that: a folded op's fp16 loss would otherwise never be compared).
    Raises ``UnsupportedOpError`` at construction when an op has no kernel.

    A stateful function (iOS 18 states, e.g. a KV cache) runs with ``run(inputs, state=...)``, the state
    made once by ``make_state()`` and kept between calls (``verification.mil.state``). Cache writes update
    the state in place where that is safe; ``in_place_states=False`` copies instead (then every value an
    ``observe`` callback keeps stays what it was when it was observed).
    """

    def __init__(
        self,
        program_or_path,
        *,
        mode: str | None = None,
        function_name: str = "main",
        fold_constants: bool = True,
        in_place_states: bool = True,
    ):
        self.program: Program = load_program(program_or_path)
        if function_name not in self.program.functions:
            raise ValueError(
                f"the program has no function {function_name!r}; it has {sorted(self.program.functions)}"
            )
        self.function = self.program.functions[function_name]
        self.function_name = function_name
        self.is_fp16_program = _program_uses_fp16(self.function)
        if mode is None:
            mode = "fp16_storage" if self.is_fp16_program else "fp32"
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {sorted(MODES)}")
        self.mode = mode
        self.fold_constants = fold_constants
        self.in_place_states = in_place_states
        self.state_specs = state_specs(self.function)
        states = {spec.name for spec in self.state_specs}
        self.inputs = {
            name: InputSpec(
                name,
                tuple(None if is_symbolic(d) else int(d) for d in var.shape)
                if types.is_tensor(var.sym_type)
                else (),
                _dtype_name(_mil_dtype(var)),
            )
            for name, var in self.function.inputs.items()
            if name not in states
        }
        self.output_names = [var.name for var in self.function.outputs]
        with torch.inference_mode():
            self._build_plan()

    # ------------------------------------------------------------------ dtypes of the mode

    def _storage_dtype(self, mil_dtype):
        if mil_dtype == types.fp32 or mil_dtype == types.fp64:
            return torch.float32
        if mil_dtype == types.fp16:
            return torch.float16 if self.mode == "fp16_native" else torch.float32
        if mil_dtype in _TORCH_INT_DTYPES:
            return _TORCH_INT_DTYPES[mil_dtype]
        raise TypeError(f"unsupported MIL dtype {_dtype_name(mil_dtype)}")

    def _rounds(self, var) -> bool:
        return self.mode == "fp16_storage" and _mil_dtype(var) == types.fp16

    def _to_storage(self, value, var) -> torch.Tensor:
        """A numpy constant or kernel result, stored as the mode stores ``var``'s declared type."""
        tensor = value if isinstance(value, torch.Tensor) else _constant_tensor(value)
        target = self._storage_dtype(_mil_dtype(var))
        if self._rounds(var) and tensor.dtype != torch.float16:
            tensor = tensor.to(torch.float16)
        return tensor.to(target)

    # ------------------------------------------------------------------ plan

    def _new_slot(self, var, value=None) -> int:
        self._slot_of[var.name] = len(self._initial_env)
        self._initial_env.append(value)
        return self._slot_of[var.name]

    def _build_plan(self):
        self._slot_of: dict[str, int] = {}
        self._initial_env: list = []
        self._constant_slots: set[int] = set()
        self._var_by_name = {}
        self.constants: dict[str, torch.Tensor] = {}  # every constant and folded value, as stored
        self.folded_ops: list[OpInfo] = []
        self._steps: list = []
        self._upcast_cache: dict = {}
        self._constant_keys: dict = {}  # constant name -> its content key (constant_store), None if small
        self._constant_uses: dict[str, list] = {}  # constant name -> (step index, keyword) of its readers
        for var in self.function.inputs.values():
            self._new_slot(var)
            self._var_by_name[var.name] = var
        total = len(list(self.function.operations))
        for position, op in enumerate(self.function.operations):
            for var in op.outputs:
                self._var_by_name[var.name] = var
            if op.op_type == "const":
                self._add_constant_op(op)
                continue
            info = OpInfo(position, op.name, op.op_type, tuple(v.name for v in op.outputs))
            kernel = KERNELS.get(op.op_type)
            if kernel is None or op.blocks:
                raise UnsupportedOpError(
                    f"no kernel for MIL op type {op.op_type!r} (op {op.name!r}, "
                    f"position {position} of {total} in function {self.function_name!r}); "
                    "this executor never guesses: add a kernel to its op family in verification/mil/kernels/"
                )
            if op.op_type.startswith("constexpr_"):
                # Compressed weights are decompressed once, here, by the project's own kernels (never by
                # coremltools' value inference), whether or not other constant ops are folded.
                self._add_op(op, info, kernel, always_fold=True)
                continue
            self._add_op(op, info, kernel)
        self._write_states_in_place()
        self._plan_frees()

    def _write_states_in_place(self):
        """Cache writes update the state's own tensor when nothing else can see it (no per-step copy)."""
        from .kernels.state import write_slice

        view_ops = {op_type for op_type, kernel in KERNELS.items() if kernel.moves_data}
        chosen = self.state_specs and self.in_place_states
        self.in_place_updates = in_place_slice_updates(self.function, view_ops) if chosen else set()
        for step in self._steps:
            if step[-1].name in self.in_place_updates:
                step[0] = write_slice

    def _add_constant_op(self, op):
        for var in op.outputs:
            value = var.val
            if isinstance(value, str):  # string attributes (pad_type, mode, ...) stay Python strings
                self._new_slot(var, value)
            else:
                # one decoded copy per content and storage form, shared with every other executor
                key = constant_store.content_key(value) if isinstance(value, np.ndarray) else None
                # rounding an fp16 value to fp16 is no rounding: fp32 and fp16-storage modes share it
                rounds = self._rounds(var) and getattr(value, "dtype", None) != np.float16
                form = f"{self._storage_dtype(_mil_dtype(var))}:{rounds}"
                tensor = constant_store.shared(
                    key, form, lambda value=value, var=var: self._to_storage(value, var)
                )
                tensor = constant_store.shaped(tensor, np.shape(value))
                self._constant_keys[var.name] = key
                self.constants[var.name] = tensor
                self._new_slot(var, tensor)
            self._constant_slots.add(self._slot_of[var.name])

    def _is_constant(self, var) -> bool:
        return self._slot_of[var.name] in self._constant_slots

    def _constant_for_kernel(self, var, upcast: bool):
        value = self._initial_env[self._slot_of[var.name]]
        if upcast and isinstance(value, torch.Tensor) and value.dtype == torch.float16:
            key = ("fp32", var.name)
            if key not in self._upcast_cache:
                content = self._constant_keys.get(var.name)
                upcast_value = constant_store.shared(
                    content, "fp32 upcast of fp16", lambda: value.to(torch.float32)
                )
                self._upcast_cache[key] = constant_store.shaped(upcast_value, value.shape)
            return self._upcast_cache[key]
        return value

    def _add_op(self, op, info, kernel, always_fold=False):
        upcast = self.mode == "fp16_native" and kernel.fp32_accumulate
        fixed, data, attrs, tuples = {}, [], [], []
        constant_inputs: list = []
        all_constant = True
        float_inputs_fp16 = True
        for name, var in op.inputs.items():
            if isinstance(var, (list, tuple)):
                items = []
                for item in var:
                    if self._is_constant(item):
                        items.append((False, self._constant_for_kernel(item, upcast)))
                    else:
                        items.append((True, self._slot_of[item.name]))
                        all_constant = False
                    float_inputs_fp16 &= (
                        not types.is_float(_mil_dtype(item)) or _mil_dtype(item) == types.fp16
                    )
                if any(is_slot for is_slot, _ in items):
                    tuples.append((name, items))
                else:
                    fixed[name] = [value for _, value in items]
                continue
            is_attribute = name in kernel.attributes
            if not is_attribute:
                float_inputs_fp16 &= not types.is_float(_mil_dtype(var)) or _mil_dtype(var) == types.fp16
            if self._is_constant(var):
                value = self._constant_for_kernel(var, upcast and not is_attribute)
                fixed[name] = _python_value(value) if is_attribute else value
                if not is_attribute:
                    constant_inputs.append((name, var.name))
            else:
                all_constant = False
                (attrs if is_attribute else data).append((name, self._slot_of[var.name]))
        finishers = []
        for var in op.outputs:
            skip_rounding = kernel.moves_data and float_inputs_fp16
            finishers.append((self._storage_dtype(_mil_dtype(var)), self._rounds(var) and not skip_rounding))
        call = kernel
        if upcast and (data or tuples):
            call = _upcasting(kernel)
        if all_constant and (self.fold_constants or always_fold):
            self._fold(op, info, call, fixed, finishers)
            return
        out_slots = tuple(self._new_slot(var) for var in op.outputs)
        for keyword, name in constant_inputs:
            self._constant_uses.setdefault(name, []).append((len(self._steps), keyword))
        self._steps.append(
            [call, fixed, tuple(data), tuple(attrs), tuple(tuples), out_slots, finishers, (), info]
        )

    def _fold(self, op, info, call, fixed, finishers):
        try:
            result = call(**fixed)
        except Exception as error:
            raise RuntimeError(
                f"op {info.op_type!r} {info.name!r} (position {info.position}) failed while folding "
                f"its constant inputs: {type(error).__name__}: {error}"
            ) from error
        outputs = result if isinstance(result, tuple) else (result,)
        for var, tensor, (dtype, rounds) in zip(op.outputs, outputs, finishers, strict=True):
            tensor = _finish(tensor, dtype, rounds)
            self.constants[var.name] = tensor
            self._new_slot(var, tensor)
            self._constant_slots.add(self._slot_of[var.name])
        self.folded_ops.append(info)

    def _plan_frees(self):
        """Drop each intermediate from the environment right after its last reader."""
        keep = {self._slot_of[name] for name in self.output_names} | self._constant_slots
        last_reader: dict[int, int] = {}
        for index, step in enumerate(self._steps):
            _, _, data, attrs, tuples, out_slots, _, _, _ = step
            slots = [slot for _, slot in data] + [slot for _, slot in attrs]
            slots += [value for _, items in tuples for is_slot, value in items if is_slot]
            for slot in list(slots) + list(out_slots):
                last_reader[slot] = index
        frees: dict[int, list] = {}
        for slot, index in last_reader.items():
            if slot not in keep:
                frees.setdefault(index, []).append(slot)
        for index, step in enumerate(self._steps):
            step[7] = tuple(frees.get(index, ()))
        self._steps = [tuple(step) for step in self._steps]

    # ------------------------------------------------------------------ inputs and outputs

    def make_state(self) -> ProgramState:
        """A new state for this program's declared states (zero-filled), to pass to every ``run``."""
        tensors = {
            spec.name: torch.zeros(spec.shape, dtype=self._storage_dtype(types.string_to_builtin(spec.dtype)))
            for spec in self.state_specs
        }
        where = f"function {self.function_name!r} of the program"
        return ProgramState(self.state_specs, self.program, self.mode, where, tensors)

    def _check_inputs(self, inputs: Mapping) -> list:
        check_input_names(self.inputs, inputs)
        converted = []
        for name, spec in self.inputs.items():
            array = validated_array(spec, inputs[name])
            if spec.dtype == "fp16" and self.mode != "fp32":
                array = array.astype(np.float16)
            converted.append(self._to_storage(np.ascontiguousarray(array), self.function.inputs[name]))
        return converted

    def _output_array(self, name: str, tensor: torch.Tensor) -> np.ndarray:
        var = self._var_by_name[name]
        if _mil_dtype(var) == types.fp16 and self.mode != "fp32":
            tensor = tensor.to(torch.float16)
        if _mil_dtype(var) == types.uint16:
            return tensor.numpy().astype(np.uint16)
        return tensor.numpy().copy()

    # ------------------------------------------------------------------ running

    def run(
        self,
        inputs: Mapping,
        observe: Callable | None = None,
        *,
        replacements: Mapping | None = None,
        state: ProgramState | None = None,
    ) -> dict:
        """Run the function on ``inputs`` (name -> numpy array) and return its outputs by name.

        ``observe(info: OpInfo, outputs: tuple[torch.Tensor, ...])`` is called after every op that runs
        (constant-folded ops are listed in ``folded_ops``); the tensors are the stored values (fp16-valued
        float32 tensors in the fp16-storage mode) and must not be modified.
        ``replacements`` (variable name -> tensor, e.g. every op output of another run of the same program):
        after an op runs and is observed, each of its outputs named there is replaced by that value, stored
        as this mode stores the variable (rounded to fp16 where declared fp16). Every op then runs on those
        values instead of this run's own: what each op alone does to them (the hazard finder's own loss).
        ``state``: required for a function that declares states (``make_state()``); it is updated in place.
        A state is checked before any op runs, so a refused call changes nothing.
        """
        with torch.inference_mode():
            steps = self.run_stepwise(inputs, replacements=replacements, state=state)
            while True:
                try:
                    info, outputs = next(steps)
                except StopIteration as finished:
                    return finished.value
                if observe is not None:
                    observe(info, outputs)

    def run_stepwise(
        self, inputs: Mapping, *, replacements: Mapping | None = None, state: ProgramState | None = None
    ) -> Iterator[tuple[OpInfo, tuple]]:
        """``run``, an op at a time: a generator of ``(info, outputs)`` after each op (what ``observe``
        sees), returning the outputs by name. Several runs advanced in lockstep compare op by op while
        each holds only its live values (the hazard finder). Iterate it under ``torch.inference_mode()``.
        ``replacements`` are read when the next op starts: the values of an op may be put there after it
        is yielded."""
        check_state(state, self.state_specs, self.program, self.mode, f"function {self.function_name!r}")
        env = list(self._initial_env)
        for name, tensor in zip(self.inputs, self._check_inputs(inputs), strict=True):
            env[self._slot_of[name]] = tensor
        for spec in self.state_specs:
            env[self._slot_of[spec.name]] = state.cell(spec.name)
        yield from self._walk(env, replacements)
        return {name: self._output_array(name, env[self._slot_of[name]]) for name in self.output_names}

    def run_all_intermediates(self, inputs: Mapping, *, state: ProgramState | None = None) -> dict:
        """Run and return every op output (not constants) by variable name, as numpy arrays."""
        collected = {}

        def keep(info, outputs):
            for name, tensor in zip(info.output_names, outputs, strict=True):
                collected[name] = self._output_array(name, tensor)

        self.run(inputs, observe=keep, state=state)
        return collected

    def _walk(self, env: list, replacements=None):
        for call, fixed, data, attrs, tuples, out_slots, finishers, frees, info in self._steps:
            kwargs = dict(fixed)
            for name, slot in data:
                kwargs[name] = env[slot]
            for name, slot in attrs:
                kwargs[name] = _python_value(env[slot])
            for name, items in tuples:
                kwargs[name] = [env[value] if is_slot else value for is_slot, value in items]
            try:
                result = call(**kwargs)
            except Exception as error:
                raise RuntimeError(
                    f"op {info.op_type!r} {info.name!r} (position {info.position}) failed: "
                    f"{type(error).__name__}: {error}; input shapes "
                    f"{ {k: tuple(v.shape) for k, v in kwargs.items() if isinstance(v, torch.Tensor)} }"
                ) from error
            if len(out_slots) == 1:
                dtype, rounds = finishers[0]
                env[out_slots[0]] = _finish(result, dtype, rounds)
            else:
                for slot, tensor, (dtype, rounds) in zip(out_slots, result, finishers, strict=True):
                    env[slot] = _finish(tensor, dtype, rounds)
            yield info, tuple(env[slot] for slot in out_slots)
            if replacements is not None:
                for slot, name in zip(out_slots, info.output_names, strict=True):
                    if name in replacements:
                        env[slot] = self._to_storage(replacements[name], self._var_by_name[name])
            for slot in frees:
                env[slot] = None

    def stored(self, name: str, value) -> torch.Tensor:
        """``value`` (a tensor or array) as this mode stores variable ``name``: rounded to fp16 where the
        program declares fp16 (fp16-storage mode), a float16 tensor (native mode), as is in fp32 mode."""
        return self._to_storage(value, self._var_by_name[name])

    @contextmanager
    def replaced_constants(self, values: Mapping) -> Iterator[MILExecutor]:
        """Within the block, runs read ``values`` (constant name -> array) instead of those constants
        (stored as this mode stores them). Only constants read by ops that run per call can be replaced
        (a constant folded into another at load time cannot). The per-layer sensitivity swaps one weight
        at a time this way, without building a new plan."""
        saved = []
        try:
            for name, value in values.items():
                uses = self._constant_uses.get(name)
                if not uses:
                    raise KeyError(
                        f"{name!r} is not a constant read by an op that runs per call (unknown, or folded)"
                    )
                stored = self._to_storage(value, self._var_by_name[name])
                for index, keyword in uses:
                    fixed = self._steps[index][1]
                    if tuple(stored.shape) != tuple(fixed[keyword].shape):
                        raise ValueError(
                            f"{name!r}: replacement shape {tuple(stored.shape)}, "
                            f"expected {tuple(fixed[keyword].shape)}"
                        )
                    saved.append((fixed, keyword, fixed[keyword]))
                    fixed[keyword] = stored.to(fixed[keyword].dtype)
            yield self
        finally:
            for fixed, keyword, value in reversed(saved):
                fixed[keyword] = value

    @property
    def op_count(self) -> int:
        """Number of ops that run per call (constants and, when folding, folded ops excluded)."""
        return len(self._steps)


def _constant_tensor(value) -> torch.Tensor:
    """A constant as a tensor: a read-only view (the weight file's, ``weight_file``) is shared, not
    copied (kernels never write a constant); anything else is copied, as torch needs a writable array."""
    array = np.asarray(value)
    if array.flags.writeable or array.ndim == 0:
        return torch.from_numpy(np.array(array))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "The given NumPy array is not writable"
        return torch.from_numpy(array)


def _finish(tensor: torch.Tensor, dtype: torch.dtype, rounds: bool) -> torch.Tensor:
    if rounds:
        if tensor.dtype != torch.float16:
            tensor = tensor.to(torch.float16)
        return tensor.to(torch.float32)
    if tensor.dtype != dtype:
        return tensor.to(dtype)
    return tensor


def _upcasting(kernel):
    """Wrap a GEMM kernel to run its float16 tensor inputs in fp32 (native mode; the output is rounded)."""

    def run_in_fp32(**kwargs):
        for name, value in kwargs.items():
            if isinstance(value, torch.Tensor) and value.dtype == torch.float16:
                kwargs[name] = value.to(torch.float32)
            elif isinstance(value, list) and value and isinstance(value[0], torch.Tensor):
                kwargs[name] = [v.to(torch.float32) if v.dtype == torch.float16 else v for v in value]
        return kernel(**kwargs)

    return run_in_fp32
