"""Saving and loading ``.mlpackage`` files."""

from __future__ import annotations

import os
from pathlib import Path

import coremltools as ct

from ..staged_save import save_directory


class PackageError(ValueError):
    """A model package could not be saved or opened (the message names the path and the problem)."""


def save(mlmodel: ct.models.MLModel, path: str | os.PathLike) -> Path:
    """Save to ``path`` (an ``.mlpackage`` directory); a failed save leaves ``path`` as it was.

    The package is written to a sibling temporary directory. An older package at ``path`` is then renamed
    into that directory, the new one renamed into place, and only then is the old one deleted; if the
    second rename fails, the old package is renamed back. (Between the two renames a concurrent reader can
    find no package at ``path``: directories cannot be swapped in one portable call.)
    """
    path = Path(path)
    if path.suffix != ".mlpackage":
        raise PackageError(f"save: expected a path ending in .mlpackage, got {str(path)!r}")
    return save_directory(path, lambda target: mlmodel.save(str(target)), PackageError)


def load(path: str | os.PathLike, *, compute_units: ct.ComputeUnit = ct.ComputeUnit.ALL) -> ct.models.MLModel:
    """Open a saved ``.mlpackage``. Off macOS the model cannot predict; its spec and weights load."""
    path = Path(path)
    if not path.exists():
        raise PackageError(f"load: no model package at {str(path)!r}")
    if path.suffix == ".aimodel":
        raise PackageError(
            f"load: {str(path)!r} is a Core AI .aimodel, expected a Core ML .mlpackage "
            "(run it with verification.coreai, or `--target coreai`)"
        )
    if not (path / "Manifest.json").is_file():
        raise PackageError(f"load: {str(path)!r} is not an .mlpackage (no Manifest.json inside)")
    try:
        return ct.models.MLModel(str(path), compute_units=compute_units, skip_model_load=not _can_load())
    except Exception as error:
        raise PackageError(
            f"load: corrupt model package {str(path)!r} ({type(error).__name__}: {error})"
        ) from None


def _can_load() -> bool:
    from .predict import coreml_runtime_available

    return coreml_runtime_available()
