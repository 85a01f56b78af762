"""``report.json``: a versioned, documented schema, written atomically and validated when read.

Schema version 1 (every key required unless marked optional)::

    {
      "schema_version": 1,
      "model": "distilbert" | "bert" | "roberta" | "reference" | "<checkpoint directory>" | "pytest",
      "config": {"seq_len": int, "batch_size": int, "precision": "fp16" | "fp32",
                 "exporter": "trace" | "export", "backend": "coreml" | "mil" | "auto"},
      "environment": {"fingerprint": {...device fingerprint...}, "versions": {"python": ..., "torch": ...,
                      "coremltools": ..., "transformers": ..., "numpy": ...}},
      "checks": [{"name": str, "metric": str, "value": float | null, "threshold": float,
                  "passed": bool | null, "measured": bool, "reason": str (optional, where not measured),
                  "direction": "at_least" | "at_most" (optional: how value meets threshold),
                  "threshold_source": "default" | "<file path>" | "--threshold" (optional)}],
      "artifacts": {"<name>": "<path>", ...},
      "details": {...}  (optional: data behind the plots — per-layer parity, op counts, fp16 precision
                         per op, speed-up timings, stage times),
      "tool": {"name": "ane-verify", "version": str | null, "commit": str | null, "modified": bool | null}
              (optional on reading; every writer adds it: see reports.provenance),
      "created": "<UTC time, ISO 8601>" (optional on reading; every writer adds it),
      "source": {"architecture": "<head class>", "checkpoint": "<directory>" | "seeded config",
                 "seed": int, "inputs": "<where the inputs came from>"} (optional: ``run`` reports;
                 a causal LM's adds "model": {class, model_type, layers, hidden, heads, kv_heads,
                 vocab}, "weights": {path, sha256, bytes[, files]} | null (seeded), "prompt": {source:
                 "seed" | "--text" | "default text", tokens, prefill_len, context, new_tokens[, seed,
                 text]}; its "seed" is null for a checkpoint read with its tokenizer),
      "passed": bool,
      "digest": "sha256:<hex>"
    }

``passed`` is true when no check has ``passed == false`` (checks not measured have ``passed == null``
and never pass silently: the renderings show them, and strict mode turns them into failures).
``digest`` is the SHA-256 of the canonical JSON (sorted keys, no whitespace) of every other key: a
report edited by hand (a threshold lowered, a verdict flipped) no longer matches it and ``gate``
refuses it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from pathlib import Path

SCHEMA_VERSION = 1
TOP_LEVEL_KEYS = (
    "schema_version",
    "model",
    "config",
    "environment",
    "checks",
    "artifacts",
    "passed",
    "digest",
)
CONFIG_KEYS = ("seq_len", "batch_size", "precision", "exporter", "backend")
CHECK_KEYS = ("name", "metric", "value", "threshold", "passed", "measured")


class ReportError(ValueError):
    """A report is malformed, of another schema version, or tampered with (the message says which)."""


def _canonical(report: dict) -> bytes:
    body = {k: v for k, v in report.items() if k != "digest"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def digest(report: dict) -> str:
    return "sha256:" + hashlib.sha256(_canonical(report)).hexdigest()


def overall_passed(checks: list[dict]) -> bool:
    return not any(c["passed"] is False for c in checks)


def finite_or_none(value):
    """JSON has no NaN or Inf: non-finite measurements are stored as strings ("inf", "-inf", "nan")."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def seal(report: dict) -> dict:
    """The report with ``passed`` recomputed from its checks and a fresh ``digest``."""
    report = dict(report)
    report["passed"] = overall_passed(report["checks"])
    report["digest"] = digest(report)
    return report


def write_json_atomically(path: Path, data: dict) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same directory, then rename."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        os.chmod(
            temporary, 0o644
        )  # mkstemp makes it private; a report is for everyone who sees the directory
        with os.fdopen(handle, "w") as stream:
            json.dump(data, stream, indent=2, sort_keys=False, allow_nan=False)
            stream.write("\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def validate(report) -> dict:
    """Raise ``ReportError`` naming the first problem; return the report when it is well formed."""
    if not isinstance(report, dict):
        raise ReportError(f"report: expected a JSON object, got {type(report).__name__}")
    missing = [k for k in TOP_LEVEL_KEYS if k not in report]
    if missing:
        raise ReportError(f"report: missing keys {missing}")
    if report["schema_version"] != SCHEMA_VERSION:
        raise ReportError(
            f"report: schema_version {report['schema_version']!r} is not supported "
            f"(expected {SCHEMA_VERSION})"
        )
    config = report["config"]
    if not isinstance(config, dict) or any(k not in config for k in CONFIG_KEYS):
        raise ReportError(f"report: config must hold {list(CONFIG_KEYS)}, got {config!r}")
    if not isinstance(report["checks"], list):
        raise ReportError(f"report: checks must be a list, got {type(report['checks']).__name__}")
    for i, check in enumerate(report["checks"]):
        if not isinstance(check, dict) or any(k not in check for k in CHECK_KEYS):
            raise ReportError(f"report: check {i} must hold {list(CHECK_KEYS)}, got {check!r}")
        if check["measured"] and check["passed"] is None:
            raise ReportError(f"report: check {check['name']!r} was measured but has no verdict")
        if not check["measured"] and not check.get("reason"):
            raise ReportError(f"report: check {check['name']!r} was not measured and gives no reason")
    if not isinstance(report["artifacts"], dict):
        raise ReportError("report: artifacts must be an object of name -> path")
    if report["digest"] != digest(report):
        raise ReportError(
            "report: digest does not match the content: the report was edited after it was written "
            "(re-run the checks, or re-evaluate thresholds with `ane-verify gate`, which never edits it)"
        )
    if report["passed"] != overall_passed(report["checks"]):
        raise ReportError("report: 'passed' disagrees with its checks")
    return report


def read(path) -> dict:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ReportError(f"report: no file at {str(path)!r}") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as error:
        raise ReportError(f"report: cannot read {str(path)!r} ({type(error).__name__})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ReportError(f"report: {str(path)!r} is not valid JSON ({error})") from None
    return validate(data)


VERSIONED_PACKAGES = ("python", "torch", "coremltools", "transformers", "numpy")


def stamped(report: dict) -> dict:
    """``report`` with the ``tool`` that writes it and the time (``created``), unless it has them."""
    from .provenance import timestamp, tool_section

    return {
        **report,
        "tool": report.get("tool") or tool_section(),
        "created": report.get("created") or timestamp(),
    }


def environment_section() -> dict:
    """``environment``: the device fingerprint and, separately, the library versions behind the numbers."""
    from verification.ondevice.device import fingerprint

    device = fingerprint()
    return {"fingerprint": device, "versions": {name: device.get(name) for name in VERSIONED_PACKAGES}}
