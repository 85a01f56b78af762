"""What ``ane-verify`` shows: stage lines and counters on stderr, the checks table on stdout."""

from __future__ import annotations

import re
import sys
import time

from .reports.content import verdict


class Progress:
    """One line per stage on stderr, with its time. On a terminal the line shows while the stage runs,
    with a counter for the work inside it (ops run, programs converted, layer pairs checked). Nothing
    with ``quiet``; no counters when stderr is not a terminal (a log keeps one line per stage)."""

    BAR = 20
    INTERVAL = 0.1  # seconds between counter redraws

    def __init__(self, total: int, stream=None, *, quiet: bool = False):
        self.total, self.stream, self.quiet = total, stream or sys.stderr, quiet
        self.live = not quiet and self.stream.isatty()
        self.head = ""
        self._drawn = 0.0

    def __call__(self, index: int, title: str, seconds: float | None) -> None:
        if self.quiet:
            return
        self.head = f"[{index + 1}/{self.total}] {title}"
        if seconds is None:
            if self.live:
                self.stream.write(f"{self.head} ...")
                self.stream.flush()
            return
        prefix = "\r\x1b[K" if self.live else ""
        self.stream.write(f"{prefix}{self.head} {'.' * max(2, 40 - len(self.head))} {seconds:6.1f} s\n")
        self.stream.flush()

    def step(self, label: str, done: int, total: int) -> None:
        """``done`` of ``total`` units of ``label`` inside the current stage (drawn at most every 0.1 s)."""
        if not self.live or total <= 0:
            return
        now = time.monotonic()
        if done < total and now - self._drawn < self.INTERVAL:
            return
        self._drawn = now
        filled = self.BAR * min(done, total) // total
        bar = "#" * filled + "-" * (self.BAR - filled)
        self.stream.write(f"\r\x1b[K{self.head}: {label} [{bar}] {done}/{total}")
        self.stream.flush()

    def note(self, text: str) -> None:
        """A line said before the run (an estimate, where thresholds came from)."""
        if not self.quiet:
            self.stream.write(f"note: {text}\n")
            self.stream.flush()


def _short_source(source: str | None) -> str:
    return "-" if source is None else source


def print_checks(checks: list[dict], stream=None) -> None:
    """The checks table, then each reason a check was not measured, once, with the checks it covers."""
    stream = stream or sys.stdout
    rows = [
        (
            c["name"],
            str(c["value"] if c["measured"] else "-"),
            f"{c['threshold']:g}",
            verdict(c),
            _short_source(c.get("threshold_source")),
        )
        for c in checks
    ]
    header = ("check", "value", "threshold", "verdict", "threshold from")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        stream.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() + "\n")
    for reason, names in not_measured_reasons(checks):
        stream.write(f"  not measured: {', '.join(names)}: {reason}\n")


def _bare_reason(check: dict) -> str:
    """A check's reason without the parts that repeat the line it is printed on: its own name, "not
    measured", "not available here"; and each "; "-separated part once."""
    reason = check.get("reason") or ""
    reason = re.sub(rf"^{re.escape(check['name'])}\b\s*", "", reason)
    context, said, rest = reason.partition("not measured:")
    if said:
        reason = f"{context.strip()}: {rest.strip()}" if context.strip() else rest.strip()
    parts = [re.sub(r"^not available here:\s*", "", part.strip()) for part in reason.split(";")]
    return "; ".join(dict.fromkeys(p for p in parts if p))


def not_measured_reasons(checks: list[dict]) -> list[tuple[str, list[str]]]:
    """(reason, names of the checks it kept from being measured), each reason once, in check order."""
    grouped: dict[str, list[str]] = {}
    for check in checks:
        if not check["measured"]:
            grouped.setdefault(_bare_reason(check), []).append(check["name"])
    return list(grouped.items())
