"""Whether the optional ``coreai`` extra (Apple's Core AI: coreai-torch, coreai-core) is installed.

The base install works without it; everything under ``verification.coreai`` that needs Core AI calls
``require()`` first, so a missing extra is one clear line, before any model is built or converted.
"""

from __future__ import annotations

import importlib.util
import sys

INSTALL_HINT = (
    "the Core AI target needs the optional 'coreai' extra (Python >= 3.11): "
    'python -m pip install -c constraints.txt -e ".[coreai]"'
)


class CoreAIUnavailable(RuntimeError):
    """The ``coreai`` extra is not installed here (the message says how to install it)."""


def missing_reason() -> str | None:
    """Why Core AI cannot be used here, or None when it can."""
    if sys.version_info < (3, 11):
        return f"Core AI needs Python >= 3.11, this is {sys.version.split()[0]}; {INSTALL_HINT}"
    missing = [name for name in ("coreai_torch", "coreai") if importlib.util.find_spec(name) is None]
    if missing:
        return f"{', '.join(missing)} not installed; {INSTALL_HINT}"
    return None


def available() -> bool:
    return missing_reason() is None


def require() -> None:
    """Raise ``CoreAIUnavailable`` (one line: what is missing and how to install it) unless installed."""
    reason = missing_reason()
    if reason is not None:
        raise CoreAIUnavailable(reason)


def versions() -> dict[str, str]:
    """Installed versions of the Core AI packages (empty when the extra is missing)."""
    from importlib import metadata

    found = {}
    for name in ("coreai-torch", "coreai-core"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found
