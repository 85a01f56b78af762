"""The GitHub Actions workflow (.github/workflows/ci.yml): lint-clean under actionlint and zizmor, and its
Linux matrix is exactly the version cells of tox.ini (a cell added to tox.ini without CI fails here).

zizmor runs with ``--offline``: only its offline audits (unpinned-uses, template-injection, artipacked,
excessive-permissions, ...), nothing reaches the network. Both tools come with the ``test`` extra.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
_spec = importlib.util.spec_from_file_location("matrix_report", ROOT / "scripts" / "matrix_report.py")
matrix_report = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(matrix_report)

PINNED_CHECKOUT = "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2"


def _tool(name: str) -> str:
    """The linter's executable: next to this interpreter (a venv or tox env) first, then on PATH."""
    path = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: it comes with the test extra (pip install -e '.[test]')")
    return path


def _lint(workflow: Path) -> dict[str, subprocess.CompletedProcess]:
    # no token in the environment: zizmor --offline would not use it, and nothing else should either
    tokens = ("GH_TOKEN", "GITHUB_TOKEN", "ZIZMOR_GITHUB_TOKEN")
    env = {k: v for k, v in os.environ.items() if k not in tokens}
    run = dict(capture_output=True, text=True, env=env, timeout=120)
    return {
        "actionlint": subprocess.run([_tool("actionlint"), "-no-color", str(workflow)], **run),
        "zizmor": subprocess.run(
            [_tool("zizmor"), "--offline", "--no-config", "--format", "plain", "--color", "never"]
            + [str(workflow)],
            **run,
        ),
    }


def _findings(results: dict[str, subprocess.CompletedProcess]) -> dict[str, str]:
    return {
        name: f"exit {r.returncode}\n{r.stdout}{r.stderr}"
        for name, r in results.items()
        if r.returncode != 0
    }


def test_actionlint_and_zizmor_find_nothing_in_the_workflow():
    findings = _findings(_lint(WORKFLOW))
    assert not findings, "findings in .github/workflows/ci.yml:\n" + "\n".join(
        f"--- {name}: {text}" for name, text in findings.items()
    )


def test_the_linters_name_an_unpinned_action_and_an_injected_expression(tmp_path):
    """The two defects the workflow must not have, planted in a copy: both linters report them (so the
    clean result above is the linters' verdict, not a linter that checks nothing)."""
    text = WORKFLOW.read_text()
    assert PINNED_CHECKOUT in text
    planted = text.replace(PINNED_CHECKOUT, "actions/checkout@v4", 1).replace(
        "      - name: Install tox\n",
        "      - run: echo ${{ github.event.issue.title }}\n      - name: Install tox\n",
        1,
    )
    assert planted.count("github.event.issue.title") == 1 and "actions/checkout@v4\n" in planted
    copy = tmp_path / ".github" / "workflows" / "ci.yml"
    copy.parent.mkdir(parents=True)
    copy.write_text(planted)
    findings = _findings(_lint(copy))
    assert set(findings) == {"actionlint", "zizmor"}, findings
    assert "unpinned-uses" in findings["zizmor"] and "template-injection" in findings["zizmor"]
    assert "github.event.issue.title" in findings["actionlint"]
    assert "potentially untrusted" in findings["actionlint"]


def _workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def test_the_linux_matrix_is_exactly_the_version_cells_of_tox_ini():
    cells = matrix_report.cells_from_tox_ini(ROOT / "tox.ini")
    assert "torch213-cml90-tf523-coreai" in cells and len(cells) >= 4, cells
    matrix = _workflow()["jobs"]["linux"]["strategy"]["matrix"]["cell"]
    assert matrix == cells, f"ci.yml's Linux matrix {matrix} is not tox.ini's version cells {cells}"


def test_the_gate_expects_a_report_from_every_cell_and_every_macos_run():
    jobs = _workflow()["jobs"]
    assert set(jobs["gate"]["needs"]) == set(jobs) - {"gate"}
    script = next(s["run"] for s in jobs["gate"]["steps"] if s.get("name") == "Gate every report.json")
    for cell in matrix_report.cells_from_tox_ini(ROOT / "tox.ini"):
        assert f"linux-{cell} " in script.replace("\n", " ").replace('"', " "), cell
    for out in ("pytest-macos", "distilbert", "smollm2"):
        assert f"macos/{out}" in script, out
        assert any(f"reports/{out}" in (s.get("run") or "") for s in jobs["macos"]["steps"]), out


def test_every_checkout_leaves_no_credentials_and_the_token_is_read_only():
    workflow = _workflow()
    assert workflow["permissions"] == {"contents": "read"}
    checkouts = [
        step
        for job in workflow["jobs"].values()
        for step in job["steps"]
        if str(step.get("uses", "")).startswith("actions/checkout@")
    ]
    assert len(checkouts) == len(workflow["jobs"])
    assert all(step["with"]["persist-credentials"] is False for step in checkouts)
