"""Load the MIL program of a Core ML ML Program (an ``.mlpackage`` or an in-memory ``MLModel``).

coremltools cannot run a model off macOS, but it can read one: ``MLModel(path, skip_model_load=True)``
gives the protobuf spec and the weights directory, and coremltools' milproto frontend rebuilds the
pymil ``Program`` from them. Weights are read-only views into the package's memory-mapped weight file,
one mapping per file in the process (``weight_file``), not copies per function and per load.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import coremltools as ct
from coremltools.converters.mil.frontend.milproto.load import load as _milproto_to_program
from coremltools.converters.mil.mil import Program

from .weight_file import load_program_views


class ProgramLoadError(ValueError):
    """The given path or model cannot be turned into an ML Program."""


def _check_package_path(path: Path) -> None:
    if not path.exists():
        raise ProgramLoadError(
            f"no such model: {str(path)!r} does not exist; expected a saved .mlpackage directory"
        )
    if path.is_file() and path.suffix == ".mlmodel":
        return  # a single-file model: its type is checked after reading the spec
    if not path.is_dir() or path.suffix != ".mlpackage":
        raise ProgramLoadError(
            f"not an ML package: {str(path)!r}; expected a directory named *.mlpackage "
            "(as written by MLModel.save for an ML Program)"
        )
    manifest = path / "Manifest.json"
    if not manifest.is_file():
        raise ProgramLoadError(f"corrupt ML package {str(path)!r}: Manifest.json is missing")
    try:
        json.loads(manifest.read_text())
    except (OSError, ValueError) as error:
        raise ProgramLoadError(
            f"corrupt ML package {str(path)!r}: Manifest.json is unreadable ({error})"
        ) from None


def _open_model(path: Path):
    _check_package_path(path)
    try:
        return ct.models.MLModel(str(path), skip_model_load=True)
    except Exception as error:  # coremltools raises many types for unreadable packages
        raise ProgramLoadError(
            f"corrupt ML package {str(path)!r}: coremltools could not read it "
            f"({type(error).__name__}: {error}); expected an .mlpackage saved by coremltools"
        ) from None


def check_ml_program(spec, where: str) -> None:
    """Raise ``ProgramLoadError`` unless the Model spec is an ML Program (both prediction backends, Core ML
    and the MIL executor, refuse other model types with this message); ``where`` names the model."""
    model_type = spec.WhichOneof("Type")
    if model_type != "mlProgram":
        raise ProgramLoadError(
            f"{where} is a {model_type!r} model, not an ML Program; expected a model converted with "
            "convert_to='mlprogram' (predict and the MIL executor run ML Programs only)"
        )


def program_from_spec(spec, weights_dir: str | None, where: str) -> Program:
    """Rebuild the MIL program from a Model spec; ``where`` names the model in error messages."""
    check_ml_program(spec, where)
    if weights_dir is not None and not os.path.isdir(weights_dir):
        weights_dir = None
    try:
        with load_program_views():
            return _milproto_to_program(spec, spec.specificationVersion, weights_dir or "")
    except Exception as error:
        raise ProgramLoadError(
            f"corrupt ML Program in {where}: the milproto frontend failed ({type(error).__name__}: {error})"
        ) from None


def load_program(source) -> Program:
    """Return the MIL ``Program`` of ``source``: a path to an ``.mlpackage``, a coremltools ``MLModel``,
    or a ``Program`` (returned as is). Raises ``ProgramLoadError`` (a ValueError) for a missing path, a
    directory that is not an ML package, a corrupt package, or a model that is not an ML Program.
    Nothing is written anywhere: an in-memory model's weights are read from its own weights directory."""
    if isinstance(source, Program):
        return source
    if isinstance(source, ct.models.MLModel):
        return program_from_spec(source.get_spec(), getattr(source, "weights_dir", None), "the given MLModel")
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        model = _open_model(path)
        return program_from_spec(model.get_spec(), model.weights_dir, repr(str(path)))
    raise ProgramLoadError(
        f"cannot load a MIL program from a {type(source).__name__}; expected a path to an .mlpackage, "
        "a coremltools MLModel or a MIL Program"
    )
