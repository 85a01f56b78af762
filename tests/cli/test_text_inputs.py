"""``ane-verify run --text``: the texts through the checkpoint's own tokenizer, one row each, named in the
report; built without converting (the build stage alone)."""

import torch
import transformers

from verification.checkpoints import minilm_directory
from verification.release import preflight, stages
from verification.release.context import Context, RunOptions

TEXTS = ("The Neural Engine likes channels first.", "Short.")


def _built(tmp_path, **options):
    o = RunOptions(None, weights=str(minilm_directory()), out=tmp_path / "out", **options)
    ctx = Context(options=o, staging=tmp_path, plan=preflight.plan(o))
    stages.build(ctx)
    return ctx


def test_texts_become_the_rows_through_the_checkpoint_tokenizer(tmp_path):
    ctx = _built(tmp_path, seq_len=24, batch_size=2, texts=TEXTS)
    tokenizer = transformers.AutoTokenizer.from_pretrained(minilm_directory(), local_files_only=True)
    expected = tokenizer(list(TEXTS), padding="max_length", max_length=24, return_tensors="pt")
    ids, mask = ctx.inputs[:2]
    assert torch.equal(ids, expected["input_ids"].to(torch.int32))
    assert torch.equal(mask, expected["attention_mask"].to(torch.int32))
    assert ctx.details["source"] == {
        "architecture": "BertModel",
        "checkpoint": str(minilm_directory().resolve()),
        "seed": 0,
        "inputs": "2 --text inputs through the checkpoint's tokenizer",
    }


def test_without_text_a_checkpoint_with_a_tokenizer_reads_built_in_sentences(tmp_path):
    ctx = _built(tmp_path, seq_len=24, batch_size=1)
    assert ctx.details["source"]["inputs"] == "1 built-in sentence through the checkpoint's tokenizer"
    assert int(ctx.inputs[1].sum()) < 24  # a real sentence, padded
