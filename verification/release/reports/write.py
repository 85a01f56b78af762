"""Writing the four reports into one directory, all or nothing.

Everything is rendered in memory first (a rendering error writes nothing); then each text is written to
a temporary file in the output directory, and only when all of them are on disk are they renamed over
the old files, report.json (through ``schema.write_json_atomically``) first.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from .render_html import render_html
from .render_junit import render_junit
from .render_markdown import render_markdown
from .schema import seal, stamped, validate, write_json_atomically

REPORT_JSON = "report.json"


def _render_all(report: dict) -> dict[str, tuple[str, str]]:
    json.dumps(report, allow_nan=False)  # NaN or Inf anywhere fails here, before anything is written
    return {
        "report_md": ("report.md", render_markdown(report)),
        "report_html": ("report.html", render_html(report)),
        "junit_xml": ("junit.xml", render_junit(report)),
    }


def _temporary_copy(out_dir: Path, name: str, text: str) -> Path:
    handle, temporary = tempfile.mkstemp(prefix=f".{name}-", dir=out_dir)
    os.chmod(temporary, 0o644)  # mkstemp makes it private; reports are for everyone who can see the directory
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        stream.write(text)
    return Path(temporary)


def write_reports(report: dict, out_dir) -> dict[str, Path]:
    """Seal ``report`` and write report.json, report.md, report.html and junit.xml into ``out_dir``.

    Returns {"report_json", "report_md", "report_html", "junit_xml"} -> path. If rendering or writing
    fails, the directory holds no new file and the old reports are untouched.
    """
    out_dir = Path(out_dir)
    report = validate(seal(stamped(report)))  # every report names the tool that wrote it, and when
    texts = _render_all(report)
    out_dir.mkdir(parents=True, exist_ok=True)
    temporaries: dict[str, Path] = {}
    try:
        for key, (name, text) in texts.items():
            temporaries[key] = _temporary_copy(out_dir, name, text)
        paths = {"report_json": write_json_atomically(out_dir / REPORT_JSON, report)}
        for key, (name, _) in texts.items():
            os.replace(temporaries.pop(key), out_dir / name)
            paths[key] = out_dir / name
    finally:
        for temporary in temporaries.values():
            temporary.unlink(missing_ok=True)
    return paths
