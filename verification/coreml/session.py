"""Stateful sessions: a converted program's functions called by name, with a state kept between calls.

The same semantics on both backends. On macOS through Core ML: one ``MLModel`` per function
(``MLModel(path, function_name=...)``), ``make_state()`` and ``predict(inputs, state=...)``. Elsewhere
through the MIL executor: one executor per function over one loaded program, and a ``ProgramState``
made from the program's state declarations. Either way a state is made once (``session.make_state()``)
and passed to every call; it is checked against the called function's declarations before anything
runs, so a refused call changes nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import coremltools as ct
import numpy as np

from .package import PackageError
from .predict import resolve_backend

_SPEC_DTYPES = {65552: "fp16", 65568: "fp32", 131104: "int32"}


class SessionError(ValueError):
    """A call the session refuses: unknown function, wrong state (the message says what was expected)."""


@dataclass(frozen=True)
class StateDeclaration:
    name: str
    shape: tuple
    dtype: str

    def __str__(self) -> str:
        return f"{self.name} {self.shape} {self.dtype}"


def state_declarations(spec, function_name: str) -> tuple[StateDeclaration, ...]:
    """A function's declared states, read from the model description."""
    description = spec.description
    states = description.state
    for function in description.functions:
        if function.name == function_name:
            states = function.state
    return tuple(
        StateDeclaration(
            s.name,
            tuple(int(d) for d in s.type.stateType.arrayType.shape),
            _SPEC_DTYPES.get(s.type.stateType.arrayType.dataType, str(s.type.stateType.arrayType.dataType)),
        )
        for s in states
    )


class SessionState:
    """A state made by ``StatefulSession.make_state()``: the backend's state (an ``MLState`` or a
    ``ProgramState``) and the declarations it was made for."""

    def __init__(self, session, declarations, backend_state, made_by: str):
        self.session, self.declarations, self.backend_state = session, declarations, backend_state
        self.made_by = made_by

    def read(self, name: str) -> np.ndarray:
        """A copy of a state's content (MIL backend only: Core ML gives no read access)."""
        if not hasattr(self.backend_state, "read"):
            raise SessionError("read: this backend's state cannot be read back (Core ML's MLState)")
        return self.backend_state.read(name)

    def __repr__(self) -> str:
        return f"SessionState({', '.join(map(str, self.declarations))}; made by {self.made_by})"


class StatefulSession:
    """Call ``predict(inputs, function_name=..., state=...)`` on any function of a converted program.

    ``model_or_path``: a saved ``.mlpackage`` (or an ``MLModel``, whose package is used). ``backend``:
    ``auto`` / ``coreml`` / ``mil`` as for ``predict``; ``mode``: the MIL executor's precision mode;
    ``compute_units``: Core ML only. ``coreml_loader`` (tests): replaces ``ct.models.MLModel`` as the
    loader of one function, called as ``loader(path, function_name=..., compute_units=...)``; giving one
    selects the Core ML code path on any platform.
    """

    def __init__(
        self,
        model_or_path,
        *,
        backend: str = "auto",
        mode: str | None = None,
        compute_units: ct.ComputeUnit | None = None,
        coreml_loader: Callable | None = None,
    ):
        self.path = _package_path(model_or_path)
        self.backend = "coreml" if coreml_loader is not None else resolve_backend(backend)
        self.spec = _read_spec(self.path)
        self.function_names = tuple(f.name for f in self.spec.description.functions) or ("main",)
        default = self.spec.description.defaultFunctionName
        self.default_function_name = default or self.function_names[0]
        self.mode, self.compute_units = mode, compute_units or ct.ComputeUnit.ALL
        self._loader = coreml_loader or ct.models.MLModel
        self._program = None
        self._runners: dict = {}

    def declarations(self, function_name: str) -> tuple[StateDeclaration, ...]:
        return state_declarations(self.spec, self._checked_name(function_name))

    def _checked_name(self, function_name: str | None) -> str:
        name = self.default_function_name if function_name is None else function_name
        if name not in self.function_names:
            raise SessionError(
                f"{self.path}: no function {name!r}; expected one of {list(self.function_names)}"
            )
        return name

    def _runner(self, name: str):
        if name not in self._runners:
            if self.backend == "mil":
                from verification.mil import MILExecutor, load_program

                if self._program is None:
                    self._program = load_program(self.path)
                self._runners[name] = MILExecutor(self._program, mode=self.mode, function_name=name)
            else:
                self._runners[name] = self._loader(
                    str(self.path), function_name=name, compute_units=self.compute_units
                )
        return self._runners[name]

    def make_state(self, function_name: str | None = None) -> SessionState:
        """A new state for ``function_name`` (default: the default function); any function that declares
        the same states takes it (prefill and decode share one KV cache)."""
        name = self._checked_name(function_name)
        declarations = state_declarations(self.spec, name)
        if not declarations:
            raise SessionError(f"{self.path}: function {name!r} declares no state; nothing to make")
        backend_state = self._runner(name).make_state()
        return SessionState(self, declarations, backend_state, f"function {name!r} of {self.path}")

    def predict(self, inputs: Mapping, *, function_name: str | None = None, state=None) -> dict:
        """Outputs by name of ``function_name`` run on ``inputs``, reading and updating ``state``."""
        name = self._checked_name(function_name)
        declared = state_declarations(self.spec, name)
        self._check_state(state, declared, name)
        runner = self._runner(name)
        inputs = {key: np.asarray(value) for key, value in inputs.items()}
        if self.backend == "mil":
            backend_state = state.backend_state if state is not None else None
            return runner.run(inputs, state=backend_state)
        if state is None:
            return {k: np.asarray(v) for k, v in runner.predict(inputs).items()}
        return {k: np.asarray(v) for k, v in runner.predict(inputs, state=state.backend_state).items()}

    def _check_state(self, state, declared, name: str) -> None:
        listed = ", ".join(map(str, declared)) or "none"
        if not declared:
            if state is not None:
                raise SessionError(f"function {name!r} of {self.path} declares no state; got {state!r}")
            return
        if not isinstance(state, SessionState):
            got = "none" if state is None else type(state).__name__
            raise SessionError(
                f"function {name!r} of {self.path} declares states ({listed}): expected a state from "
                f"session.make_state(), got {got}"
            )
        if state.session is not self:
            raise SessionError(
                f"function {name!r} of {self.path}: expected a state made by this session (states "
                f"{listed}), got a state from another model ({state.made_by})"
            )
        if tuple(state.declarations) != tuple(declared):
            raise SessionError(
                f"function {name!r} of {self.path}: expected a state with the declarations {listed}, got "
                f"one made by {state.made_by} ({', '.join(map(str, state.declarations))})"
            )


def _read_spec(path: Path):
    if not (path / "Manifest.json").is_file():
        raise PackageError(f"StatefulSession: no model package at {str(path)!r} (no Manifest.json)")
    try:
        return ct.utils.load_spec(str(path))
    except Exception as error:
        raise PackageError(f"StatefulSession: corrupt model package {str(path)!r} ({error})") from None


def _package_path(model_or_path) -> Path:
    if isinstance(model_or_path, (str, os.PathLike)):
        return Path(model_or_path)
    path = getattr(model_or_path, "package_path", None)
    if isinstance(model_or_path, ct.models.MLModel) and path:
        return Path(path)
    raise PackageError(
        f"StatefulSession: expected a saved .mlpackage path or an MLModel with a package, got "
        f"{type(model_or_path).__name__}"
    )
