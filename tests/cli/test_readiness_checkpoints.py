"""The checkpoints the issue found failing their own readiness defaults pass through ``ane-verify run``:
a DistilBERT token-classification head (its output transpose is the head's own layout switch) and a
RoBERTa question-answering head (position ids no longer an int32 cumsum). The gate judges copies outside
the layers by the checkpoint's head, and the report keeps the ops every readiness check counted."""

import pytest
import torch
import transformers

from verification import thresholds
from verification.release.cli import main
from verification.release.reports.schema import read

pytestmark = pytest.mark.coreml

TINY = dict(num_attention_heads=2, intermediate_size=16, vocab_size=60, max_position_embeddings=40)
CHECKPOINTS = {
    "DistilBertForTokenClassification": lambda: transformers.DistilBertConfig(
        dim=16, n_heads=2, n_layers=1, hidden_dim=16, vocab_size=60, max_position_embeddings=40, num_labels=3
    ),
    "RobertaForQuestionAnswering": lambda: transformers.RobertaConfig(
        hidden_size=16, num_hidden_layers=1, pad_token_id=1, type_vocab_size=1, num_labels=2, **TINY
    ),
}


@pytest.mark.parametrize("architecture", sorted(CHECKPOINTS))
def test_the_checkpoints_pass_their_readiness_defaults(architecture, tmp_path):
    torch.manual_seed(0)
    getattr(transformers, architecture)(CHECKPOINTS[architecture]()).save_pretrained(
        tmp_path / "checkpoint", safe_serialization=True
    )
    out = tmp_path / "out"
    main(["run", "--weights", str(tmp_path / "checkpoint"), "--seq-len", "8", "--out", str(out)])
    report = read(out / "report.json")
    readiness = {c["name"]: c for c in report["checks"] if c["name"].startswith("readiness_")}
    failed = {n: c for n, c in readiness.items() if c["passed"] is not True}
    assert len(readiness) == 5 and not failed, f"{architecture}: {failed}"
    outside = readiness["readiness_copies_outside_layers"]
    assert outside["threshold"] == thresholds.readiness_copies_outside_layers_max(architecture)
    assert outside["value"] == outside["threshold"]
    found = report["details"]["readiness_findings"]
    assert len(found["readiness_copies_outside_layers"]) == outside["value"]
    assert len(found["readiness_off_ane_ops"]) == readiness["readiness_off_ane_ops"]["value"]
