"""`ane-verify run` through the program cache: a second run of the same model converts nothing, says so,
and reaches the same figures; --no-cache converts again."""

import json

import pytest
import torch
import transformers

from verification.coreml import program_cache
from verification.release.cli import main


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    config = transformers.DistilBertConfig(
        dim=32, n_heads=4, n_layers=2, hidden_dim=48, vocab_size=97, max_position_embeddings=32
    )
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("checkpoint") / "tiny-distilbert"
    transformers.DistilBertForSequenceClassification(config).save_pretrained(path, safe_serialization=True)
    return path


def _run(checkpoint, out, *extra):
    code = main(["run", "--weights", str(checkpoint), "--seq-len", "8", "--out", str(out), "--quiet", *extra])
    report = json.loads((out / "report.json").read_text())
    return code, report


def test_a_second_run_is_served_by_the_cache_and_says_so(tiny_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv(program_cache.ENV, str(tmp_path / "cache"))
    code, first = _run(tiny_checkpoint, tmp_path / "first")
    assert code == 0 and first["details"]["program_cache"]["misses"] == 1, first["details"]["program_cache"]
    code, second = _run(tiny_checkpoint, tmp_path / "second")
    cache = second["details"]["program_cache"]
    assert code == 0 and (cache["hits"], cache["misses"]) == (1, 0), cache
    assert "1 hit(s), conversion skipped" in (tmp_path / "second" / "report.md").read_text()
    figures = [{c["name"]: c["value"] for c in r["checks"]} for r in (first, second)]
    assert figures[0]["coreml_parity_psnr_db"] == figures[1]["coreml_parity_psnr_db"], figures
    code, uncached = _run(tiny_checkpoint, tmp_path / "third", "--no-cache")
    assert code == 0 and uncached["details"]["program_cache"]["directory"] is None
    assert "Program cache: off" in (tmp_path / "third" / "report.md").read_text()
