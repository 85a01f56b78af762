"""Running a converted model: Core ML where it can run (macOS), the MIL reference executor elsewhere."""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping

import coremltools as ct
import numpy as np

BACKENDS = ("auto", "coreml", "mil")


def coreml_runtime_available() -> bool:
    """True where coremltools can run predictions: macOS with coremltools' native extension."""
    if platform.system() != "Darwin":
        return False
    try:
        import coremltools.libcoremlpython  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_backend(backend: str = "auto") -> str:
    """The backend that ``predict`` will use: ``auto`` is ``coreml`` where Core ML runs, else ``mil``."""
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {list(BACKENDS)}, got {backend!r}")
    if backend == "auto":
        return "coreml" if coreml_runtime_available() else "mil"
    if backend == "coreml" and not coreml_runtime_available():
        raise RuntimeError(
            f"backend 'coreml' is not available here ({platform.system()} {platform.machine()}): Core ML "
            "predictions need macOS; use backend='mil' (the MIL reference executor) or 'auto'"
        )
    return backend


def predict(
    model_or_path,
    inputs: Mapping[str, np.ndarray],
    *,
    backend: str = "auto",
    compute_units: ct.ComputeUnit | None = None,
    mode: str | None = None,
) -> dict[str, np.ndarray]:
    """Outputs by name of the ML Program ``model_or_path`` (an ``MLModel`` or a saved ``.mlpackage``).

    ``backend``: ``coreml`` (macOS), ``mil`` (any platform; ``mode`` picks the MIL executor's precision
    mode) or ``auto``. ``compute_units`` (Core ML only): the units to run on; by default an ``MLModel``'s
    own and ``ALL`` for a path. An ``MLModel`` loaded with other units is reloaded with the requested ones.
    Anything but an ML Program is refused (``ProgramLoadError``) on either backend.
    """
    chosen = resolve_backend(backend)
    inputs = {name: np.asarray(value) for name, value in inputs.items()}
    if chosen == "mil":
        from verification.mil import MILExecutor, load_program

        return MILExecutor(load_program(model_or_path), mode=mode).run(inputs)
    return _predict_coreml(model_or_path, inputs, compute_units)


def _predict_coreml(model_or_path, inputs: dict, compute_units) -> dict[str, np.ndarray]:
    from verification.mil.program import check_ml_program

    if isinstance(model_or_path, (str, os.PathLike)):
        from .package import load

        model = load(model_or_path, compute_units=compute_units or ct.ComputeUnit.ALL)
        where = repr(str(model_or_path))
    else:
        model, where = model_or_path, "the given MLModel"
    spec = model.get_spec()
    check_ml_program(spec, where)
    model = _with_compute_units(model, compute_units)
    _check_inputs(spec, inputs)
    return {name: np.asarray(value) for name, value in model.predict(inputs).items()}


def _with_compute_units(model, compute_units):
    """``model`` itself when it already runs on ``compute_units`` (or none were asked for), else the same
    program reloaded with them (Core ML fixes the compute units when it loads a model)."""
    if compute_units is None or getattr(model, "compute_unit", None) == compute_units:
        return model
    return _reload(model, compute_units)


def _reload(model, compute_units):
    """The ML Program of ``model`` (spec and weights) loaded again, on ``compute_units`` (macOS)."""
    return ct.models.MLModel(model.get_spec(), weights_dir=model.weights_dir, compute_units=compute_units)


_ARRAY_DTYPES = {65568: np.float32, 65552: np.float16, 131104: np.int32, 65600: np.float64}


def _check_inputs(spec, inputs: dict) -> None:
    """Names, shapes and dtypes against the model description, before Core ML sees them."""
    expected = {d.name: d.type.multiArrayType for d in spec.description.input}
    missing, unexpected = sorted(set(expected) - set(inputs)), sorted(set(inputs) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"inputs: expected names {sorted(expected)}, got {sorted(inputs)} (missing {missing}, "
            f"unexpected {unexpected})"
        )
    for name, array_type in expected.items():
        shape = tuple(int(d) for d in array_type.shape)
        if shape and tuple(inputs[name].shape) != shape:
            raise ValueError(f"input {name!r}: expected shape {shape}, got {tuple(inputs[name].shape)}")
        dtype = _ARRAY_DTYPES.get(array_type.dataType)
        if dtype is not None and inputs[name].dtype.kind != np.dtype(dtype).kind:
            raise ValueError(f"input {name!r}: expected dtype {np.dtype(dtype)}, got {inputs[name].dtype}")
