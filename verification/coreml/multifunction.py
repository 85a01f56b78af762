"""Multifunction packages: several functions (a decoder's prefill and decode) sharing one copy of the weights.

``save_multifunction`` writes converted programs as the functions of one ``.mlpackage``, a weight blob
once when functions hold the same bytes, a blob at a time (``function_merge``: the package coremltools'
own ``save_multifunction`` writes, without holding every function's weights in memory).
``package_size`` reports what the package weighs on disk.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import coremltools as ct

from .function_merge import merge_functions
from .package import PackageError, save

MULTIFUNCTION_TARGET = ct.target.iOS18  # multifunction programs need the iOS 18 specification


def save_multifunction(
    functions: Mapping[str, ct.models.MLModel | str | os.PathLike],
    path: str | os.PathLike,
    *,
    default_function_name=None,
) -> Path:
    """Save ``functions`` (function name -> converted ``MLModel`` or the path of its saved package, each a
    single-function ML Program for iOS 18 or newer) as one package at ``path``; the default function is
    ``default_function_name`` or the first one. A saved package is read where it is (not saved again).
    Like ``package.save``, a failed save leaves ``path`` as it was."""
    from coremltools.models.utils import load_spec

    path = Path(path)
    if not functions:
        raise PackageError("save_multifunction: expected at least one function, got none")
    names = list(functions)
    default = names[0] if default_function_name is None else default_function_name
    if default not in functions:
        raise PackageError(f"save_multifunction: default_function_name {default!r} is not one of {names}")
    specs = {
        name: load_spec(str(item)) if isinstance(item, (str, os.PathLike)) else item.get_spec()
        for name, item in functions.items()
    }
    for name, spec in specs.items():
        if spec.WhichOneof("Type") != "mlProgram":
            raise PackageError(f"save_multifunction: function {name!r} is not an ML Program")
        if spec.specificationVersion < 9:  # 9 is the iOS 18 specification
            raise PackageError(
                f"save_multifunction: function {name!r} was converted for specification version "
                f"{spec.specificationVersion}; a multifunction package needs iOS18 (version 9): convert "
                "with minimum_deployment_target=ct.target.iOS18"
            )
    parent = path.parent if str(path.parent) else Path(".")
    if path.suffix != ".mlpackage" or not parent.is_dir():
        raise PackageError(
            f"save_multifunction: expected a path ending in .mlpackage in an existing "
            f"directory, got {str(path)!r}"
        )
    staging = Path(tempfile.mkdtemp(prefix=f".{path.stem}-parts-", dir=parent))
    try:
        parts = {
            name: Path(item)
            if isinstance(item, (str, os.PathLike))
            else save(item, staging / f"{name}.mlpackage")
            for name, item in functions.items()
        }
        combined = staging / path.name
        merge_functions(parts, combined, default)
        _record_op_modules(specs, combined)
        _replace(combined, path, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def _record_op_modules(specs: Mapping, package: Path) -> None:
    """Keep each function's op -> module map (``scopes``) in the combined package, one metadata entry per
    function (``specs``: function name -> its spec): coremltools' multifunction save keeps none of them,
    and the functions' op names collide."""
    from coremltools.models.utils import load_spec

    from .scopes import METADATA_KEY, function_key

    maps = {name: spec.description.metadata.userDefined.get(METADATA_KEY) for name, spec in specs.items()}
    if not any(maps.values()):
        return
    spec = load_spec(str(package))
    for name, text in maps.items():
        if text:
            spec.description.metadata.userDefined[function_key(name)] = text
    manifest = json.loads((package / "Manifest.json").read_text())
    item = manifest["itemInfoEntries"][manifest["rootModelIdentifier"]]
    (package / "Data" / item["path"]).write_bytes(spec.SerializeToString())


def _replace(new: Path, path: Path, staging: Path) -> None:
    if not path.exists():
        os.replace(new, path)
        return
    old = staging / f"previous-{path.name}"
    os.replace(path, old)
    try:
        os.replace(new, path)
    except BaseException:
        os.replace(old, path)
        raise


def package_size(path: str | os.PathLike) -> int:
    """Bytes on disk of a saved package (every file in it)."""
    path = Path(path)
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def function_names(model_or_path) -> tuple[str, ...]:
    """The functions of a saved package or ``MLModel``: its declared functions, or ``("main",)``."""
    if isinstance(model_or_path, (str, os.PathLike)):
        from .package import load

        model_or_path = load(model_or_path)
    description = model_or_path.get_spec().description
    return tuple(f.name for f in description.functions) or ("main",)


def require_functions(model_or_path, expected: Sequence[str]) -> None:
    """Raise ``PackageError`` naming the expected and the present functions unless all are there."""
    present = function_names(model_or_path)
    missing = [name for name in expected if name not in present]
    if missing:
        where = str(model_or_path) if isinstance(model_or_path, (str, os.PathLike)) else "the model"
        raise PackageError(
            f"{where}: expected functions {list(expected)}, got {list(present)} (missing {missing})"
        )
