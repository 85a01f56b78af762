"""The compression a package holds, weight by weight (its constexpr chains and stored bits), and, when
``--compress`` says what was intended, every weight whose stored form or bits differ from that."""

from __future__ import annotations

# Stored bits above the declared nominal that a weight may carry: look-up tables, per-channel scales and
# offsets (``Config.nominal_bits`` leaves them out). On small weights they are large: int8 per channel
# with an fp16 scale and an int8 offset on a 200 x 48 embedding is 8.503 bits. Less than a step between
# two bit widths coremltools offers (3/4, 4/6, 6/8), so a wrong declaration is still found.
OVERHEAD_BITS = 1.0
FORMS = {  # the constexpr op each declared step is stored as (the last of the chain)
    "palettize": ("constexpr_lut_to_dense", "constexpr_lut_to_sparse"),
    "quantize": ("constexpr_affine_dequantize", "constexpr_blockwise_shift_scale"),
    "prune": (
        "constexpr_sparse_to_dense",
        "constexpr_lut_to_sparse",
        "constexpr_sparse_blockwise_shift_scale",
    ),
}
METRIC = (
    "weights whose stored form or bits per weight differ from --compress (bits within nominal .. nominal "
    f"+ {OVERHEAD_BITS}; nominal as docs/compression.md)"
)


def _expected(config) -> tuple:
    if config.is_none:
        return ("dense",)
    step = (
        "prune" if config.prune is not None else "palettize" if config.palettize is not None else "quantize"
    )
    return FORMS[step]


def judge_compression(package: str, declared: str | None, judge, details: dict) -> None:
    from ...compression.weights import weights

    found = weights(package)
    stored, count = sum(w.stored_bits for w in found), sum(w.count for w in found)
    details["compression_found"] = {
        "bits_per_weight": round(stored / count, 3) if count else None,
        "weights": [
            {
                "op": w.op,
                "op_type": w.op_type,
                "shape": list(w.shape),
                "form": w.form,
                "bits_per_weight": round(w.bits_per_weight, 3),
            }
            for w in found
        ],
        "declared": declared,
    }
    if declared is None:  # nothing was declared, so nothing is judged (strict runs would fail on it)
        return
    from ...compression.recipe import parse_compress

    recipe = parse_compress(declared)
    differing = []
    for weight in found:
        config = recipe.config_for(weight.op, weight.op_type, None)
        nominal = 16.0 if config.is_none else config.nominal_bits
        forms = _expected(config)
        bits_ok = nominal - 0.01 <= weight.bits_per_weight <= nominal + OVERHEAD_BITS
        dense_ok = config.is_none and weight.form == "dense"  # fp16 or fp32 storage: both are "none"
        if not dense_ok and (weight.form not in forms or not bits_ok):
            differing.append(
                {
                    "op": weight.op,
                    "declared": config.text(),
                    "found": weight.form,
                    "bits_per_weight": round(weight.bits_per_weight, 3),
                    "nominal_bits": round(nominal, 3),
                }
            )
    details["compression_found"]["not_as_declared"] = differing
    judge("compression_weights_not_as_declared", METRIC, len(differing))
