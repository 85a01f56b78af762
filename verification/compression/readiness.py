"""What is published about the Neural Engine and compressed weights, per form (no measurement here: the
figures need a Mac; the static weight memory is in ``weights.size_summary``). Sources in docs/compression.md.
"""

from __future__ import annotations

COREMLTOOLS_PERF = "https://apple.github.io/coremltools/docs-guides/source/opt-quantization-perf.html"
EXECUTORCH_COREML = "https://docs.pytorch.org/executorch/stable/backends/coreml/coreml-quantization.html"

# form (constexpr op) -> (what is published about it on the ANE, source)
PUBLISHED = {
    "constexpr_lut_to_dense": (
        "palettized weights (1-8 bit LUTs, per tensor from iOS16, per grouped channel from iOS18); "
        "weight-only: "
        "the ANE computes in fp16, the saving is weight memory and bandwidth",
        COREMLTOOLS_PERF,
    ),
    "constexpr_affine_dequantize": (
        "int8 weights per channel (iOS16); weight-only: fp16 compute on the ANE",
        COREMLTOOLS_PERF,
    ),
    "constexpr_blockwise_shift_scale": (
        "int8 per channel or int4 per block (iOS18); coremltools' performance guide expects the per-block "
        "4-bit gains when the model runs on the GPU, not on the Neural Engine",
        COREMLTOOLS_PERF,
    ),
    "constexpr_sparse_to_dense": ("pruned (sparse) weights; weight memory only", COREMLTOOLS_PERF),
    "constexpr_lut_to_sparse": ("pruned + palettized weights (iOS18); weight memory only", COREMLTOOLS_PERF),
    "constexpr_sparse_blockwise_shift_scale": (
        "pruned + quantized weights (iOS18); weight memory only",
        COREMLTOOLS_PERF,
    ),
}
# Activation quantization is outside this module (weights only), but it is the one form with a published
# per-chip compute gain: A17 Pro and M4 have more int8-int8 throughput on the Neural Engine (W8A8).
W8A8 = (
    "W8A8 (int8 weights and activations, per tensor): increased int8-int8 Neural Engine throughput on A17 "
    "Pro and M4 (earlier chips: no published gain); not produced by --compress (weights only)",
    COREMLTOOLS_PERF,
)


def ane_support(forms: list[str], recipe=None) -> list[dict]:
    """The published facts for each compressed form a program holds, and the W8A8 note."""
    rows = [
        {"form": form, "published": PUBLISHED[form][0], "source": PUBLISHED[form][1]}
        for form in forms
        if form in PUBLISHED
    ]
    rows.append({"form": "W8A8", "published": W8A8[0], "source": W8A8[1]})
    return rows
