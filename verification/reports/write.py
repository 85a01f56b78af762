"""Writing the four reports: rendered in memory first, then each written atomically, so that a rendering
error leaves the output directory as it was."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .render_html import render_html
from .render_junit import render_junit
from .render_markdown import render_markdown
from .schema import seal, validate, write_json_atomically


def _write_text_atomically(path: Path, text: str) -> None:
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_reports(report: dict, out_dir) -> dict[str, Path]:
    """Write report.json, report.md, report.html and junit.xml into ``out_dir``; return their paths."""
    out_dir = Path(out_dir)
    report = validate(seal(report))
    texts = {
        "report_md": ("report.md", render_markdown(report)),
        "report_html": ("report.html", render_html(report)),
        "junit_xml": ("junit.xml", render_junit(report)),
    }
    paths = {"report_json": write_json_atomically(out_dir / "report.json", report)}
    for key, (name, text) in texts.items():
        _write_text_atomically(out_dir / name, text)
        paths[key] = out_dir / name
    return paths
