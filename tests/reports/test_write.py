"""write_reports: the four files, sealed and valid, written all or nothing."""

import json
import os
import stat

import pytest
from sample_reports import sample_report

from verification.release.reports import schema
from verification.release.reports import write as write_module
from verification.release.reports.write import write_reports

REPORT_FILES = ["junit.xml", "report.html", "report.json", "report.md"]


def _snapshot(directory):
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


def test_writes_the_four_reports_and_returns_their_paths(tmp_path):
    paths = write_reports(sample_report(), tmp_path / "new" / "out")
    out = tmp_path / "new" / "out"
    assert paths == {
        "report_json": out / "report.json",
        "report_md": out / "report.md",
        "report_html": out / "report.html",
        "junit_xml": out / "junit.xml",
    }
    assert sorted(p.name for p in out.iterdir()) == REPORT_FILES
    assert schema.read(paths["report_json"])["passed"] is True
    for name in ("report.md", "report.html", "junit.xml"):
        assert stat.S_IMODE(os.stat(out / name).st_mode) == 0o644, name


def test_the_report_is_sealed_before_it_is_written(tmp_path):
    report = sample_report(failing=True)
    report["passed"], report["digest"] = True, "sha256:stale"
    written = schema.read(write_reports(report, tmp_path)["report_json"])
    assert written["passed"] is False and written["digest"] == schema.digest(written)
    assert (tmp_path / "report.md").read_text().startswith("# ane-verify: FAILED")


@pytest.mark.parametrize("renderer", ["render_markdown", "render_html", "render_junit"])
def test_a_rendering_error_leaves_the_directory_as_it_was(tmp_path, monkeypatch, renderer):
    write_reports(sample_report(), tmp_path)
    (tmp_path / "unrelated.txt").write_text("keep me")
    before = _snapshot(tmp_path)

    def broken(report):
        raise RuntimeError(f"planted failure in {renderer}")

    monkeypatch.setattr(write_module, renderer, broken)
    with pytest.raises(RuntimeError, match="planted"):
        write_reports(sample_report(failing=True), tmp_path)
    assert _snapshot(tmp_path) == before


def test_a_value_json_cannot_hold_fails_before_anything_is_written(tmp_path):
    report = sample_report()
    report["details"]["layer_parity"] = [{"layer": "embeddings", "psnr_db": float("nan")}]
    with pytest.raises(ValueError, match="JSON compliant"):
        write_reports(report, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_leaves_no_temporary_file_and_the_old_reports(tmp_path, monkeypatch):
    write_reports(sample_report(), tmp_path)
    before = _snapshot(tmp_path)

    def disk_full(path, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(write_module, "write_json_atomically", disk_full)
    with pytest.raises(OSError, match="No space"):
        write_reports(sample_report(failing=True), tmp_path)
    assert _snapshot(tmp_path) == before


def test_the_json_is_the_sealed_report(tmp_path):
    report = sample_report(speedup_measured=True)
    written = json.loads(write_reports(report, tmp_path)["report_json"].read_text())
    assert written == report


def test_report_json_is_readable_like_the_other_reports(tmp_path):
    """mkstemp makes files 0600: report.json was private while the other reports were 0644."""
    write_reports(sample_report(), tmp_path)
    assert stat.S_IMODE(os.stat(tmp_path / "report.json").st_mode) == 0o644


@pytest.mark.parametrize("name", ["report.md", "report.html", "junit.xml", "report.json"])
def test_every_report_names_the_tool_its_commit_the_time_and_the_source(tmp_path, name):
    write_reports(sample_report(), tmp_path)
    text = (tmp_path / name).read_text()
    for expected in (
        "0.1.0",
        "0123456789ab",
        "2026-12-01T10:00:00Z",
        "DistilBertForSequenceClassification",
        "seeded config",
        "random token ids (seed 0)",
    ):
        assert expected in text, f"{name} does not say {expected!r}"


def test_a_report_without_provenance_gets_it_when_written(tmp_path):
    from verification.release.reports.provenance import SOURCE_ROOT, tool_section

    report = sample_report()
    del report["tool"], report["created"]
    written = schema.read(write_reports(report, tmp_path)["report_json"])
    assert written["tool"] == tool_section()
    assert written["created"].endswith("Z") and written["created"][:2] == "20"
    if not (SOURCE_ROOT / ".git").exists():  # never a guess
        assert written["tool"]["commit"] is None or len(written["tool"]["commit"]) == 40
