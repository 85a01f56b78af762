"""Saving and opening Core AI ``.aimodel`` assets (directories: the program's bytecode and metadata)."""

from __future__ import annotations

import os
from pathlib import Path

from ..staged_save import save_directory
from .extra import require


class AssetError(ValueError):
    """A Core AI asset could not be saved or opened (the message names the path and the problem)."""


def _refuse_wrong_kind(path: Path, verb: str) -> None:
    if path.suffix == ".mlpackage" or (path / "Manifest.json").is_file():
        raise AssetError(
            f"{verb}: {str(path)!r} is a Core ML .mlpackage, expected a Core AI .aimodel "
            "(run it with verification.coreml, or `--target coreml`)"
        )
    if path.suffix != ".aimodel":
        raise AssetError(f"{verb}: expected a path ending in .aimodel, got {str(path)!r}")


def save(program, path: str | os.PathLike) -> Path:
    """Save a ``CoreAIProgram`` to ``path`` (an ``.aimodel`` directory); a failed save leaves ``path`` as it
    was. Core AI's own ``save_asset`` deletes what is at the path before writing, so the asset is written
    to a sibling temporary directory and renamed into place only once complete."""
    require()
    path = Path(path)
    _refuse_wrong_kind(path, "save")
    source = getattr(program, "program", program)
    # save_asset takes a Path: it refuses a str
    return save_directory(path, source.save_asset, AssetError)


def open_asset(path: str | os.PathLike):
    """The ``coreai.authoring.AIModelAsset`` at ``path``; refuses an ``.mlpackage`` and anything else that is
    not a valid Core AI asset, naming what was found."""
    require()
    from coreai.authoring import AIModelAsset

    path = Path(path)
    if not path.exists():
        raise AssetError(f"load: no Core AI asset at {str(path)!r}")
    _refuse_wrong_kind(path, "load")
    if not AIModelAsset.is_valid(path):
        raise AssetError(
            f"load: {str(path)!r} is not a valid Core AI asset (no program or compiled artifact)"
        )
    try:
        return AIModelAsset.load(path)
    except Exception as error:
        raise AssetError(
            f"load: corrupt Core AI asset {str(path)!r} ({type(error).__name__}: {error})"
        ) from None


def is_aimodel(path: str | os.PathLike) -> bool:
    """Whether ``path`` looks like a Core AI asset (by name: usable without the extra)."""
    return Path(path).suffix == ".aimodel"
