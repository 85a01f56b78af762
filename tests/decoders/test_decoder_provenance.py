"""The decoder report's provenance: the architecture from the config, a --weights file or directory
named with its sha256 and size, and where the prompt came from."""

from __future__ import annotations

import hashlib

import transformers

from verification.release.decoder_zoo import DecoderSource, source_section, weights_fingerprint

CONFIG = dict(
    vocab_size=64,
    hidden_size=32,
    intermediate_size=48,
    num_hidden_layers=1,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=32,
)
LENGTHS = {"prefill_len": 8, "context": 24, "new_tokens": 6}


def _model():
    return transformers.LlamaForCausalLM(transformers.LlamaConfig(**CONFIG)).eval()


def test_a_gguf_file_is_named_with_its_sha256_and_size(tmp_path):
    weights = tmp_path / "model.gguf"
    weights.write_bytes(b"GGUF" + bytes(range(200)))
    source = DecoderSource("llama", _model(), object(), str(weights))
    prompt = {"source": "--text", "text": "Hi there", "tokens": 3, **LENGTHS}
    section = source_section(source, prompt)
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert section["weights"] == {"path": str(weights.resolve()), "sha256": digest, "bytes": 204}, section
    assert section["checkpoint"] == f"{weights.resolve()} (sha256 {digest}, 204 bytes)"
    assert section["seed"] is None, "a checkpoint read with its tokenizer has no seed"
    assert section["architecture"] == (
        "LlamaForCausalLM (model_type llama): 1 layers, hidden 32, 4 heads, 2 kv heads, vocab 64"
    )
    assert section["inputs"] == (
        "--text 'Hi there' through the checkpoint's tokenizer: 3 tokens; prefill length 8, context 24, "
        "6 new tokens"
    )


def test_a_directory_is_named_by_its_files_digests(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 10)
    (tmp_path / ".hidden").write_text("not part of the checkpoint")
    found = weights_fingerprint(str(tmp_path))
    assert [f["name"] for f in found["files"]] == ["config.json", "model.safetensors"], found
    assert found["bytes"] == 12
    before = found["sha256"]
    (tmp_path / "model.safetensors").write_bytes(b"\1" * 10)
    assert weights_fingerprint(str(tmp_path))["sha256"] != before, "a changed weight file changes the digest"


def test_a_checkpoint_without_tokenizer_records_the_prompt_seed(tmp_path):
    weights = tmp_path / "m.gguf"
    weights.write_bytes(b"x")
    source = DecoderSource("llama", _model(), None, str(weights))
    section = source_section(source, {"source": "seed", "seed": 0, "tokens": 8, **LENGTHS})
    assert section["seed"] == 0 and section["inputs"].startswith("8 random token ids (torch.randint, seed 0)")
