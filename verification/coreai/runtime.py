"""Running a Core AI program: Core AI's OS runtime on macOS 27 (with a compute-unit choice), the
interpreter bundled in the ``coreai-core`` wheel everywhere else (Linux: no device choice).

Two paths, both through Core AI's documented Python runtime (``coreai.runtime``):

* interpreter (Linux, and macOS without the OS framework): ``AIModelAsset.executable()`` compiles the
  asset to a temporary ``.aimodelx`` and loads that; ``AIModel.load`` on the ``.aimodel`` itself fails
  here (it looks for a compiled artifact), and ``SpecializationOptions`` raise off macOS.
* OS runtime (macOS 27 with Core AI): ``AIModel.load(path, SpecializationOptions...)`` where the options
  pick the preferred compute unit (``ComputeUnitKind.cpu() / gpu() / neural_engine()``) or CPU only.

In both, inputs are ``coreai.runtime.NDArray`` by input name and the function call is awaited. The
runtime module is injectable (``runtime=``) so the macOS path is tested on Linux with recorded answers.
"""

from __future__ import annotations

import asyncio
import os
import platform
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .extra import require, versions

COMPUTE_UNITS = ("cpu_only", "cpu", "gpu", "neural_engine")
FUNCTION = "main"


class CoreAIRuntimeError(RuntimeError):
    """The Core AI runtime refused the request (wrong platform for a compute unit, bad inputs...)."""


def _runtime_module(runtime):
    if runtime is not None:
        return runtime
    require()
    import coreai.runtime

    return coreai.runtime


def uses_os_runtime(runtime=None) -> bool:
    """True where Core AI's OS runtime (macOS 27) runs programs; False for the bundled interpreter."""
    return bool(_runtime_module(runtime).SpecializationOptions.is_supported())


def describe(compute_unit: str | None = None, runtime=None) -> str:
    """Which runtime computes a prediction here, for reports: 'Core AI interpreter (...)' or 'Core AI OS
    runtime (..., neural_engine)'."""
    core = versions().get("coreai-core", "?")
    if uses_os_runtime(runtime):
        unit = compute_unit or "default"
        return f"Core AI OS runtime (coreai-core {core}, macOS {platform.mac_ver()[0]}, {unit})"
    return f"Core AI interpreter (coreai-core {core}, bundled, {platform.system()} {platform.machine()})"


def specialization_options(runtime, compute_unit: str | None):
    """The ``SpecializationOptions`` for ``compute_unit`` (None: the runtime's default)."""
    options, kinds = runtime.SpecializationOptions, runtime.ComputeUnitKind
    if compute_unit is None:
        return options.default()
    if compute_unit == "cpu_only":
        return options.cpu_only()
    kind = {"cpu": kinds.cpu, "gpu": kinds.gpu, "neural_engine": kinds.neural_engine}[compute_unit]()
    return options.from_preferred_compute_unit_kind(kind)


def _check_compute_unit(compute_unit, runtime) -> None:
    if compute_unit is not None and compute_unit not in COMPUTE_UNITS:
        raise ValueError(f"compute_unit: expected one of {list(COMPUTE_UNITS)} or None, got {compute_unit!r}")
    if compute_unit is not None and not uses_os_runtime(runtime):
        raise CoreAIRuntimeError(
            f"compute_unit {compute_unit!r} needs Core AI's OS runtime (macOS 27); here "
            f"({platform.system()} {platform.machine()}) only the bundled interpreter runs, with no device "
            "choice: pass compute_unit=None"
        )


def _check_inputs(function, inputs: Mapping[str, np.ndarray]) -> None:
    """Names, shapes and dtypes against the function's descriptor, before the runtime sees them."""
    desc = function.desc
    expected = list(desc.input_names)
    missing, unexpected = sorted(set(expected) - set(inputs)), sorted(set(inputs) - set(expected))
    if missing or unexpected:
        raise CoreAIRuntimeError(
            f"inputs: expected names {expected}, got {sorted(inputs)} "
            f"(missing {missing}, unexpected {unexpected})"
        )
    for name in expected:
        descriptor = desc.input_descriptor(name)
        shape = tuple(descriptor.shape)
        if None not in shape and tuple(inputs[name].shape) != shape:
            raise CoreAIRuntimeError(
                f"input {name!r}: expected shape {shape}, got {tuple(inputs[name].shape)}"
            )
        want = _numpy_dtype(descriptor.dtype)
        if want is not None and inputs[name].dtype != want:
            raise CoreAIRuntimeError(f"input {name!r}: expected dtype {want}, got {inputs[name].dtype}")


_DTYPES = {
    "float32": np.float32,
    "float16": np.float16,
    "int32": np.int32,
    "int64": np.int64,
    "bool": np.bool_,
}


def _numpy_dtype(name: str):
    key = str(name).lower().replace("f32", "float32").replace("f16", "float16")
    key = {"si32": "int32", "i32": "int32", "si64": "int64"}.get(key, key)
    found = _DTYPES.get(key)
    return np.dtype(found) if found is not None else None


async def _call(
    model, inputs: Mapping[str, np.ndarray], runtime, function_name: str = FUNCTION
) -> dict[str, np.ndarray]:
    function = model.load_function(function_name)
    _check_inputs(function, inputs)
    feeds = {name: runtime.NDArray(np.ascontiguousarray(value)) for name, value in inputs.items()}
    outputs = await function(feeds)
    # The runtime's dict is not in the function's output order: return them in the declared order.
    order = list(function.desc.output_names) or list(outputs)
    return {name: np.asarray(outputs[name].numpy()) for name in order}


async def predict_async(
    program_or_path, inputs: Mapping[str, np.ndarray], *, compute_unit: str | None = None, runtime=None
) -> dict[str, np.ndarray]:
    """``predict``, for callers already inside an event loop."""
    runtime = _runtime_module(runtime)
    _check_compute_unit(compute_unit, runtime)
    inputs = {name: np.asarray(value) for name, value in inputs.items()}
    with _saved(program_or_path) as path:
        if uses_os_runtime(runtime):
            model = await runtime.AIModel.load(path, specialization_options(runtime, compute_unit))
            return await _call(model, inputs, runtime)
        from .asset import open_asset

        async with open_asset(path).executable() as model:
            return await _call(model, inputs, runtime)


def predict(
    program_or_path, inputs: Mapping[str, np.ndarray], *, compute_unit: str | None = None, runtime=None
) -> dict[str, np.ndarray]:
    """Outputs by name of a ``CoreAIProgram`` or a saved ``.aimodel`` run by Core AI's runtime.

    ``compute_unit`` (OS runtime only): ``"cpu_only"``, or the preferred unit ``"cpu"``, ``"gpu"`` or
    ``"neural_engine"``; None is the runtime's default (and the only choice on the interpreter).
    """
    return asyncio.run(predict_async(program_or_path, inputs, compute_unit=compute_unit, runtime=runtime))


def function_descriptors(path, runtime=None) -> dict[str, dict[str, list]]:
    """Each function of a saved ``.aimodel``: its inputs, outputs and states as ``(name, shape, dtype)``,
    read from the descriptors the runtime gives once the asset is loaded (nothing is run). A dimension
    the program leaves open is ``None``; dtypes are numpy's names (``int32``, ``float16``...)."""
    return asyncio.run(_function_descriptors(path, _runtime_module(runtime)))


async def _function_descriptors(path, runtime) -> dict[str, dict[str, list]]:
    def features(names, descriptor):
        found = []
        for name in names:
            d = descriptor(name)
            shape = [None if s is None or int(s) < 0 else int(s) for s in d.shape]
            dtype = _numpy_dtype(d.dtype)
            found.append((name, tuple(shape), dtype.name if dtype is not None else str(d.dtype)))
        return found

    async def read(model):
        functions = {}
        for name in model.function_names:
            desc = model.load_function(name).desc
            functions[name] = {
                "inputs": features(desc.input_names, desc.input_descriptor),
                "outputs": features(desc.output_names, desc.output_descriptor),
                "states": features(desc.state_names, desc.state_descriptor),
            }
        return functions

    with _saved(path) as saved:
        if uses_os_runtime(runtime):
            return await read(await runtime.AIModel.load(saved, specialization_options(runtime, None)))
        from .asset import open_asset

        async with open_asset(saved).executable() as model:
            return await read(model)


class _saved:
    """The path of ``program_or_path``: itself when it is a path, else the program saved to a temporary
    ``.aimodel`` that is deleted afterwards."""

    def __init__(self, program_or_path):
        self.source, self.directory = program_or_path, None

    def __enter__(self) -> Path:
        if isinstance(self.source, (str, os.PathLike)):
            from .asset import _refuse_wrong_kind

            path = Path(self.source)
            _refuse_wrong_kind(path, "predict")
            return path
        from .asset import save

        self.directory = tempfile.mkdtemp(prefix="ane-verify-coreai-")
        return save(self.source, Path(self.directory) / "program.aimodel")

    def __exit__(self, *exc) -> None:
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)


class Session:
    """A program loaded once for many predictions (``predict`` compiles and loads on every call)::

    with Session(program) as session:
        outputs = session.run(inputs)
    """

    def __init__(self, program_or_path, *, compute_unit: str | None = None, runtime=None):
        self.runtime = _runtime_module(runtime)
        _check_compute_unit(compute_unit, self.runtime)
        self.compute_unit, self._saved = compute_unit, _saved(program_or_path)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._context: Any = None
        self._model: Any = None

    def __enter__(self) -> Session:
        path = self._saved.__enter__()
        self._loop = loop = asyncio.new_event_loop()
        try:
            if uses_os_runtime(self.runtime):
                options = specialization_options(self.runtime, self.compute_unit)
                self._model = loop.run_until_complete(self.runtime.AIModel.load(path, options))
            else:
                from .asset import open_asset

                self._context = open_asset(path).executable()
                self._model = loop.run_until_complete(self._context.__aenter__())
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def run(self, inputs: Mapping[str, np.ndarray], function_name: str = FUNCTION) -> dict[str, np.ndarray]:
        if self._loop is None:
            raise RuntimeError("Session.run: use the session inside a `with` block")
        inputs = {name: np.asarray(value) for name, value in inputs.items()}
        return self._loop.run_until_complete(_call(self._model, inputs, self.runtime, function_name))

    def __exit__(self, *exc) -> None:
        try:
            if self._context is not None and self._loop is not None:
                self._loop.run_until_complete(self._context.__aexit__(None, None, None))
        finally:
            self._model = self._context = None
            if self._loop is not None:
                self._loop.close()
            self._saved.__exit__()
