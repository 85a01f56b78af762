"""scripts/readme_figures.py: refuses a file without markers before running anything; the table it
writes names every row's figures, its verdict (with the failed checks), its wall time and the machine."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "readme_figures.py"


@pytest.fixture(scope="module")
def figures():
    spec = importlib.util.spec_from_file_location("readme_figures", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_file_without_markers_is_refused_before_any_run(figures, tmp_path, monkeypatch):
    readme = tmp_path / "README.md"
    readme.write_text("# a README without the markers\n")
    monkeypatch.setattr(figures, "run_one", lambda *a: pytest.fail("a run started"))
    assert figures.main(["--output", str(readme)]) == 2
    assert readme.read_text() == "# a README without the markers\n"


def test_the_table_replaces_only_the_text_between_the_markers(figures, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"before\n{figures.BEGIN}\nold table\n{figures.END}\nafter\n")
    results = [
        (
            "distilbert",
            "DistilBertForSequenceClassification",
            {
                "seconds": 27.4,
                "exit": 0,
                "torch_db": 130.52,
                "program_db": 78.81,
                "passed": True,
                "failed": [],
                "backend": "mil",
            },
        ),
        (
            "roberta",
            "RobertaForSequenceClassification",
            {
                "seconds": 61.0,
                "exit": 1,
                "torch_db": 120.0,
                "program_db": 70.0,
                "passed": False,
                "failed": ["readiness_off_ane_ops 9 vs 4"],
                "backend": "mil",
            },
        ),
    ]
    figures.write(readme, figures.render(results))
    text = readme.read_text()
    assert text.startswith("before\n") and text.endswith("\nafter\n") and "old table" not in text
    assert "| distilbert | `DistilBertForSequenceClassification` | 130.5 | 78.8 | PASSED | 27 s |" in text
    assert "**FAILED**: readiness_off_ane_ops 9 vs 4" in text
    from verification.pytest_plugin import host_section

    host = host_section(None)  # the machine: CPU model and cores
    assert f"; {host['cpu']}, {host['cores']} cores, " in text, text.splitlines()[-3]


def test_every_head_run_verifies_is_a_row(figures, tmp_path):
    from verification.release.model_zoo import _supported_heads

    rows = figures.runs(None, tmp_path)
    heads = {head for _, head, _ in rows}
    for family, names in _supported_heads().items():
        assert set(names) <= heads, family
    assert {"distilbert", "bert", "roberta", "reference"} <= {name for name, _, _ in rows}


def test_the_seeded_checkpoints_take_the_default_length(figures, tmp_path):
    from verification.release.model_zoo import inspect_directory

    for family in figures.PREFIX:
        path = figures.seeded_checkpoint(family, "ForTokenClassification", tmp_path)
        assert inspect_directory(path).max_seq_len >= 128, family
