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
