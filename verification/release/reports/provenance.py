"""Which ane-verify wrote a report, and when: the tool's version, the git commit it runs from, a time.

The commit is read, never guessed: from the git checkout the code runs from (``git rev-parse HEAD``, with
whether tracked files differ from it), else from pip's record of a VCS install (PEP 610
``direct_url.json``), else None.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "ane-verify"
SOURCE_ROOT = Path(__file__).resolve().parents[3]  # verification/release/reports/ -> the checkout


def version() -> str | None:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None


def _git(*args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", "-C", str(SOURCE_ROOT), *args], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def _commit_from_checkout() -> tuple[str, bool] | None:
    if not (SOURCE_ROOT / ".git").exists():
        return None
    commit = _git("rev-parse", "HEAD")
    if commit is None or len(commit) != 40:
        return None
    changes = _git("status", "--porcelain", "--untracked-files=no")
    return commit, bool(changes)


def _commit_from_pip() -> str | None:
    try:
        text = metadata.distribution(DISTRIBUTION).read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    if not text:
        return None
    try:
        commit = json.loads(text).get("vcs_info", {}).get("commit_id")
    except (json.JSONDecodeError, AttributeError):
        return None
    return commit if isinstance(commit, str) else None


def tool_section() -> dict:
    """``tool``: {"name", "version", "commit", "modified"}: ``modified`` is true when tracked files of the
    checkout differ from ``commit`` (None where that cannot be known)."""
    checkout = _commit_from_checkout()
    if checkout is not None:
        commit, modified = checkout
        return {"name": DISTRIBUTION, "version": version(), "commit": commit, "modified": modified}
    return {"name": DISTRIBUTION, "version": version(), "commit": _commit_from_pip(), "modified": None}


def timestamp() -> str:
    """Now, in UTC, ISO 8601 to the second (``2026-12-01T10:15:00Z``)."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def describe(tool: dict | None) -> str:
    """``ane-verify 0.1.0 (commit 1a2b3c4d5e6f, modified)`` for the renderings."""
    if not tool:
        return "unknown"
    commit = tool.get("commit")
    where = f"commit {commit[:12]}" if commit else "commit unknown"
    if tool.get("modified"):
        where += ", with local changes"
    return f"{tool.get('name', DISTRIBUTION)} {tool.get('version') or '(version unknown)'} ({where})"
