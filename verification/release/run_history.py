"""Earlier runs on this machine, to calibrate the up-front estimate of the next one.

The estimate (``estimate.py``) is fitted on one machine; machines here differ by 2.5x and more. After
every completed ``run``, its estimate and what was measured (wall seconds, peak RSS) are appended to
``run-history.json`` in the cache directory (``$ANE_VERIFY_CACHE``; nothing is kept when the cache is
off), with the machine it ran on (CPU model, cores). The next estimate of the same kind on the same
machine is scaled by the median of measured / estimated over the last ``RECENT`` such runs, and says so.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
import tempfile
from dataclasses import replace
from pathlib import Path

from .estimate import Estimate

HISTORY_FILE = "run-history.json"
KEPT = 200  # entries kept in the file (the oldest dropped first)
RECENT = 5  # earlier runs of the same kind and machine a calibration takes the median of


def history_path() -> Path | None:
    """Where the history lives, or None when the cache is off (``ANE_VERIFY_CACHE=off`` / ``--no-cache``)."""
    from ..checkpoints import cache_root

    if os.environ.get("ANE_VERIFY_CACHE", "").lower() in ("off", "0", "no", "false"):
        return None
    return cache_root() / HISTORY_FILE


def machine() -> dict:
    """This machine as the history tells machines apart: its CPU model and core count."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count()}


def _entries(path: Path | None) -> list[dict]:
    if path is None or not path.is_file():
        return []
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError):
        return []  # a damaged history calibrates nothing; the next record rewrites it
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def record(kind: str, estimated: Estimate, seconds: float, peak_bytes: float | None) -> None:
    """Append one completed run (``kind`` such as ``run encoder``) to the history, written whole."""
    path = history_path()
    if path is None:
        return
    entry = {
        "kind": kind,
        "machine": machine(),
        "estimated_seconds": round(estimated.seconds, 2),
        "estimated_bytes": round(estimated.bytes),
        "seconds": round(seconds, 2),
        "peak_bytes": None if peak_bytes is None else round(peak_bytes),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    entries = [*_entries(path), entry][-KEPT:]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, scratch = tempfile.mkstemp(prefix=HISTORY_FILE, dir=path.parent)
        with os.fdopen(handle, "w") as stream:
            json.dump(entries, stream, indent=1)
        os.replace(scratch, path)
    except OSError:
        pass  # a history that cannot be written leaves the next estimate uncalibrated, nothing more


def calibrated(kind: str, estimated: Estimate) -> tuple[Estimate, str]:
    """``estimated`` scaled by this machine's earlier runs of ``kind``, and a note saying how."""
    here = machine()
    earlier = [
        e
        for e in _entries(history_path())
        if e.get("kind") == kind and e.get("machine") == here and e.get("estimated_seconds")
    ][-RECENT:]
    if not earlier:
        return estimated, "a rough estimate from the config; no earlier run of its kind on this machine"
    time_factor = statistics.median(e["seconds"] / e["estimated_seconds"] for e in earlier)
    peaks = [e["peak_bytes"] / e["estimated_bytes"] for e in earlier if e.get("peak_bytes")]
    memory_factor = statistics.median(peaks) if peaks else 1.0
    scaled = replace(
        estimated, seconds=estimated.seconds * time_factor, bytes=estimated.bytes * memory_factor
    )
    runs = f"{len(earlier)} earlier run{'s' if len(earlier) > 1 else ''}"
    return scaled, (
        f"calibrated on {runs} of its kind on this machine: time x{time_factor:.2f}, memory "
        f"x{memory_factor:.2f} of the config's estimate"
    )
