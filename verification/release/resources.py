"""What each stage of a run cost: wall seconds and peak resident memory (the report's stage table).

A stage's peak is measured without touching the process's own peak marks (``VmHWM``, ``ru_maxrss``,
which ``/usr/bin/time`` and the caller's ``getrusage`` read): while the stage runs, a daemon thread
samples the resident set from ``/proc/self/statm`` every 10 ms, and the stage's peak is the largest
sample. When the process's ``ru_maxrss`` rose during the stage, the process reached its peak inside
the stage, so that exact figure replaces the samples (``peak_scope: "stage"``); otherwise the figure is
the samples' maximum (``"sampled"``: a spike shorter than 10 ms can be missed). Where there is no
``/proc`` (macOS) the figure is the process's peak so far (``"process"``).
"""

from __future__ import annotations

import os
import resource
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

_STATM = Path("/proc/self/statm")
_SAMPLE_SECONDS = 0.01


def _rss_bytes() -> int | None:
    """The process's resident set now, in bytes; None where /proc/self/statm cannot be read."""
    try:
        return int(_STATM.read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _max_rss_raw() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _raw_to_mb(peak: int) -> float:
    # ru_maxrss is in bytes on macOS, in KiB on Linux
    return peak / 1e6 if sys.platform == "darwin" else peak * 1024 / 1e6


def process_peak_mb() -> float:
    """The process's peak RSS since it started, in MB (10**6 bytes)."""
    return _raw_to_mb(_max_rss_raw())


class _RssSampler:
    """A daemon thread keeping the largest RSS sample from ``start()`` to ``stop()``."""

    def __init__(self) -> None:
        self.peak = _rss_bytes() or 0
        self._done = threading.Event()
        self.thread = threading.Thread(target=self._run, name="stage-rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._done.wait(_SAMPLE_SECONDS):
            self._take()

    def _take(self) -> None:
        rss = _rss_bytes()
        if rss is not None and rss > self.peak:
            self.peak = rss

    def start(self) -> _RssSampler:
        self.thread.start()
        return self

    def stop(self) -> int:
        self._done.set()
        self.thread.join()
        self._take()  # the stage's last moment, however short the stage was
        return self.peak


class StageMeter:
    """Times stages and records each one's peak RSS: ``with meter.stage("convert"): ...``."""

    def __init__(self) -> None:
        self.stages: list[dict] = []

    @contextmanager
    def stage(self, name: str):
        sampler = _RssSampler().start() if _rss_bytes() is not None else None
        max_rss_before = _max_rss_raw()
        start = time.perf_counter()
        try:
            yield
        finally:
            seconds = time.perf_counter() - start
            sampled = sampler.stop() if sampler is not None else None
            max_rss_after = _max_rss_raw()
            if sampled is None:
                peak, scope = process_peak_mb(), "process"
            elif max_rss_after > max_rss_before:
                peak, scope = _raw_to_mb(max_rss_after), "stage"
            else:
                peak, scope = sampled / 1e6, "sampled"
            self.stages.append(
                {
                    "name": name,
                    "seconds": round(seconds, 2),
                    "peak_mb": round(peak, 1),
                    "peak_scope": scope,
                }
            )

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
