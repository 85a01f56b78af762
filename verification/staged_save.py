"""Saving a directory artifact (an .mlpackage, an .aimodel) so that a failure never leaves half of one.

The artifact is written to a temporary sibling directory and renamed into place only once complete; an
older artifact of the same name is swapped out and restored if the final rename fails.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def save_directory(path: Path, write: Callable[[Path], None], error: type[Exception]) -> Path:
    """``write(target)`` writes the artifact at ``target``; it then replaces ``path``. Bad destinations
    raise ``error`` before anything is written."""
    if path.exists() and not path.is_dir():
        raise error(f"save: {str(path)!r} exists and is not a directory")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise error(f"save: the directory {str(parent)!r} does not exist")
    staging = Path(tempfile.mkdtemp(prefix=f".{path.stem}-", dir=parent))
    try:
        new = staging / path.name
        write(new)
        if not path.exists():
            os.replace(new, path)
        else:
            old = staging / f"previous-{path.name}"
            os.replace(path, old)
            try:
                os.replace(new, path)
            except BaseException:
                os.replace(old, path)
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path
