"""A rough estimate of a run's time and peak memory from the model's config, said before the run.

Both grow with the work of one forward pass: the MIL reference executor runs the converted program four
times (Core ML parity, then the fp16 hazard finder's fp32, fp16 and per-op passes), its elementwise ops
on large tensors are bound by memory rather than arithmetic, and the hazard finder keeps every op's fp32
output of one pass, attention scores (B x heads x S x S per layer) included. So:

    seconds ~ FIXED_SECONDS + SECONDS_PER_GFLOP * GFLOPs + SECONDS_PER_GFLOAT * G floats the layers write
    bytes   ~ FIXED_BYTES + WEIGHT_COPIES * 4 * parameters + KEPT_OUTPUTS * 4 * floats the layers write

with the constants fitted to two DistilBERT-base runs (docs/run-estimates.md: the defaults, measured with
``/usr/bin/time -v``, and ``--seq-len 512 --batch-size 8``, 12 min and 9.9 GB). A rough figure: the
machine's speed and load change the time by a factor of two or more.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

# The embedded defaults' sizes (transformers' default configs; torch.nn.Transformer's defaults).
EMBEDDED_SIZES: dict[str, dict] = {
    "distilbert": {"dim": 768, "n_layers": 6, "hidden_dim": 3072, "n_heads": 12, "vocab_size": 30522},
    "bert": {
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "intermediate_size": 3072,
        "num_attention_heads": 12,
        "vocab_size": 30522,
    },
    "roberta": {
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "intermediate_size": 3072,
        "num_attention_heads": 12,
        "vocab_size": 50265,
    },
    "reference": {"d_model": 512, "num_layers": 12, "dim_feedforward": 2048, "nhead": 8, "vocab_size": 0},
}

# Fitted constants (docs/run-estimates.md has the runs they come from).
FIXED_SECONDS = 15.0  # imports, building, tracing and converting two programs (little size dependence)
SECONDS_PER_GFLOP = 1.0  # the executor's and torch's passes, per GFLOP of one forward pass
SECONDS_PER_GFLOAT = 280.0  # memory-bound elementwise work, per G floats the layers write in one pass
FIXED_BYTES = 0.95e9  # the interpreter with torch, coremltools and transformers loaded
WEIGHT_COPIES = 6  # baseline, optimized, two converted programs, the executors' fp32 copies
KEPT_OUTPUTS = 1.62  # op outputs kept per float the layers write (fitted)
SLOW_SECONDS = 300.0  # a run estimated above 5 minutes is said as a warning


def machine_memory_bytes() -> float | None:
    """This machine's physical memory (None where the OS does not say)."""
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


@dataclass(frozen=True)
class Estimate:
    seconds: float
    bytes: float
    gflops: float  # one forward pass

    @property
    def large(self) -> bool:
        """Over 5 minutes, or over half this machine's memory."""
        memory = machine_memory_bytes()
        return self.seconds > SLOW_SECONDS or (memory is not None and self.bytes > memory / 2)

    def describe(self) -> str:
        minutes = self.seconds / 60
        time = f"{minutes:.0f} min" if minutes >= 2 else f"{self.seconds:.0f} s"
        work = f"{self.gflops:.0f}" if self.gflops >= 1 else f"{self.gflops:.2f}"
        return (
            f"about {time} and {self.bytes / 1e9:.1f} GB of memory ({work} GFLOP per forward pass)"
        )


def _sizes(family: str, config: dict) -> tuple[int, int, int, int, int]:
    """(layers, width, FFN width, heads, vocabulary) under each family's config names."""
    if family == "distilbert":
        names = ("n_layers", "dim", "hidden_dim", "n_heads")
        defaults = (6, 768, 3072, 12)
    elif family == "reference":
        names = ("num_layers", "d_model", "dim_feedforward", "nhead")
        defaults = (12, 512, 2048, 8)
    else:
        names = ("num_hidden_layers", "hidden_size", "intermediate_size", "num_attention_heads")
        defaults = (12, 768, 3072, 12)
    layers, width, ffn, heads = (int(config.get(n, d)) for n, d in zip(names, defaults, strict=True))
    return layers, width, ffn, heads, int(config.get("vocab_size", 0))


def estimate(family: str, config: dict, seq_len: int, rows: int, *, architecture: str = "") -> Estimate:
    """The estimate for ``rows`` sequences of ``seq_len`` tokens (rows: batch x choices)."""
    layers, width, ffn, heads, vocab = _sizes(family, config)
    tokens = rows * seq_len
    dense = 2 * tokens * (4 * width * width + 2 * width * ffn)
    attention = 4 * tokens * seq_len * width
    flops = layers * (dense + attention)
    if architecture.endswith("ForMaskedLM"):  # the vocabulary projection of every token
        flops += 2 * tokens * width * (width + vocab)
    parameters = layers * (4 * width * width + 2 * width * ffn) + vocab * width
    # floats one layer writes: ~20 (B, C, 1, S) tensors (projections, norms, residuals, layout copies),
    # 2 of the FFN's width, 4 of attention scores
    written = layers * (20 * tokens * width + 2 * tokens * ffn + 4 * rows * heads * seq_len * seq_len)
    return Estimate(
        seconds=FIXED_SECONDS + SECONDS_PER_GFLOP * flops / 1e9 + SECONDS_PER_GFLOAT * written / 1e9,
        bytes=FIXED_BYTES + WEIGHT_COPIES * 4 * parameters + KEPT_OUTPUTS * 4 * written,
        gflops=flops / 1e9,
    )


# Causal LMs (``run smollm2``, ``run --weights`` of a Llama-family checkpoint): coremltools' conversion of
# the two functions dominates time and memory, and both grow with the parameters. Fitted to the two runs of
# benchmarks/bench_scale.py (docs/run-estimates.md): seeded SmolLM2-135M (134.5M parameters), 268 s and
# 3.16 GB; seeded Qwen3-0.6B (596M), 958 s and 9.68 GB.
DECODER_FIXED_SECONDS = 67.0
DECODER_SECONDS_PER_MPARAM = 1.49
DECODER_FIXED_BYTES = 1.26e9
DECODER_PEAK_PER_WEIGHT_BYTE = 3.53  # peak RSS per byte of fp32 weights (the conversion tree is the peak)


def decoder_parameters(config: dict) -> int:
    """The parameters of a Llama-family causal LM with this (transformers) config."""
    hidden, layers = int(config["hidden_size"]), int(config["num_hidden_layers"])
    heads = int(config["num_attention_heads"])
    kv_heads = int(config.get("num_key_value_heads") or heads)
    head_dim = int(config.get("head_dim") or hidden // heads)
    attention = 2 * hidden * heads * head_dim + 2 * hidden * kv_heads * head_dim
    per_layer = attention + 3 * hidden * int(config["intermediate_size"]) + 2 * hidden
    if config.get("model_type") == "qwen3":
        per_layer += 2 * head_dim  # the query and key norms
    embeddings = int(config["vocab_size"]) * hidden * (1 if config.get("tie_word_embeddings") else 2)
    return layers * per_layer + embeddings + hidden


def decoder_estimate(parameters: int) -> Estimate:
    """The estimate of a causal LM's run from its parameter count."""
    return Estimate(
        seconds=DECODER_FIXED_SECONDS + DECODER_SECONDS_PER_MPARAM * parameters / 1e6,
        bytes=DECODER_FIXED_BYTES + DECODER_PEAK_PER_WEIGHT_BYTE * 4 * parameters,
        gflops=2 * parameters / 1e9,  # one token's
    )
