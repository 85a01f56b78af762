"""What each stage of a run cost: wall seconds and peak resident memory (the report's stage table).

On Linux the kernel's peak-RSS mark (``VmHWM`` in ``/proc/self/status``) is reset at the start of each
stage (``echo 5 > /proc/self/clear_refs``), so a stage's peak is its own, exact, not sampled. Where that
cannot be done (macOS, a kernel that refuses the reset) the figure is the process's peak so far
(``getrusage``'s ``ru_maxrss``), and the stage says so with ``peak_scope: "process"``. (The reset also
resets ``ru_maxrss`` on Linux: once a stage has reset it, only the stages' own peaks mean anything.)
"""

from __future__ import annotations

import resource
import sys
import time
from contextlib import contextmanager
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark to the current RSS; False where that is not possible."""
    try:
        _CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def _status_kb(field: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def release_freed_memory() -> None:
    """Collect garbage, then hand the C heap's free pages back to the OS (glibc's ``malloc_trim``): torch
    and coremltools free large buffers that glibc would otherwise keep mapped, so that a stage would
    start from the previous stages' high-water mark instead of what is still alive."""
    import ctypes
    import gc

    gc.collect()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass  # not glibc: nothing to trim


def process_peak_mb() -> float:
    """The process's peak RSS since it started, in MB (10**6 bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # ru_maxrss is in bytes on macOS, in KiB on Linux
    return peak / 1e6 if sys.platform == "darwin" else peak * 1024 / 1e6


class StageMeter:
    """Times stages and records each one's peak RSS: ``with meter.stage("convert"): ...``."""

    def __init__(self) -> None:
        self.stages: list[dict] = []

    @contextmanager
    def stage(self, name: str):
        release_freed_memory()
        start_rss = _status_kb("VmRSS")
        own_peak = _reset_peak() and _status_kb("VmHWM") is not None
        start = time.perf_counter()
        try:
            yield
        finally:
            seconds = time.perf_counter() - start
            hwm = _status_kb("VmHWM") if own_peak else None
            peak = hwm * 1024 / 1e6 if hwm is not None else process_peak_mb()
            self.stages.append(
                {
                    "name": name,
                    "seconds": round(seconds, 2),
                    "peak_mb": round(peak, 1),
                    "peak_scope": "stage" if hwm is not None else "process",
                    **({} if start_rss is None else {"start_mb": round(start_rss * 1024 / 1e6, 1)}),
                }
            )

    def include_children(self, tree_peak_mb: float) -> None:
        """The last stage ran child processes: its peak is the process tree's (their sampled proportional
        set sizes and this process's, summed) where that is larger than this process's own."""
        stage = self.stages[-1]
        stage["own_peak_mb"] = stage["peak_mb"]
        stage["peak_mb"] = round(max(stage["peak_mb"], tree_peak_mb), 1)
        stage["peak_scope"] = "process tree"

    def memory_section(self, weights_fp32_bytes: int | None) -> dict:
        """The run's peak (the largest stage peak, or the process's) against the model's fp32 weights."""
        peak = max([s["peak_mb"] for s in self.stages] + [0.0])
        section: dict = {"peak_mb": round(peak, 1)}
        if weights_fp32_bytes:
            section["weights_fp32_mb"] = round(weights_fp32_bytes / 1e6, 1)
            section["peak_over_weights"] = round(peak / (weights_fp32_bytes / 1e6), 2)
        return section


def fp32_weight_bytes(*modules) -> int:
    """Bytes of the distinct parameters and buffers of torch modules, counted as fp32 (4 bytes each)."""
    seen: set[int] = set()
    total = 0
    for module in modules:
        if module is None:
            continue
        for tensor in [*module.parameters(), *module.buffers()]:
            if id(tensor) not in seen and tensor.is_floating_point():
                seen.add(id(tensor))
                total += tensor.numel() * 4
    return total
