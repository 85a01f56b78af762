"""A compressed package made by coremltools.optimize directly, applied to coremltools_guide's BERT
classifier package: every weight but the embedding palettized (``palettize_weights``, k-means, one table
per tensor)
and the embedding table quantized to int8 (``linear_quantize_weights``, symmetric, per channel). What was
applied is declared as an ane-verify recipe (``declared.toml``, for ``--compress recipe=FILE``) and
listed weight by weight in the record.

``defect="bits_mismatch"`` palettizes with 6 bits while the declaration says 4.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from .coremltools_guide import bert_classifier
from .records import ForeignPackage

DECLARED_BITS = 4
WEIGHT_THRESHOLD = 2048  # coremltools' default: smaller weights (biases, norms, the 48 x 3 head) stay dense


def _recipe(bits: int) -> str:
    return f'[compression]\ndefault = "palettize:{bits}"\n[compression.op_types]\ngather = "quantize:int8"\n'


def _compress(package: str, bits: int):
    import coremltools as ct
    import coremltools.optimize.coreml as cto

    mlmodel = ct.models.MLModel(package, skip_model_load=True)
    # every weight palettized but the embedding table (op_type_configs None: left for the int8 pass), as
    # the declared recipe says (default palettize, gather int8)
    palettes = cto.OptimizationConfig(
        global_config=cto.OpPalettizerConfig(nbits=bits, mode="kmeans"), op_type_configs={"gather": None}
    )
    mlmodel = cto.palettize_weights(mlmodel, palettes)
    int8 = cto.OptimizationConfig(
        op_type_configs={"gather": cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8")}
    )
    return cto.linear_quantize_weights(mlmodel, int8)


def _compressed_weights(mlmodel) -> list[dict]:
    """Each constexpr op of the program with the op that consumes it."""
    found = []
    for op in mlmodel._mil_program.functions["main"].operations:
        if not op.op_type.startswith("constexpr_"):
            continue
        for consumer in op.outputs[0].child_ops:
            found.append(
                {
                    "op": consumer.name,
                    "op_type": consumer.op_type,
                    "shape": list(op.outputs[0].shape),
                    "form": op.op_type,
                }
            )
    return found


def compressed_bert(directory, defect: str | None = None, seed: int = 7) -> ForeignPackage:
    """``BertClassifierCompressed.mlpackage`` and ``declared.toml`` in ``directory``; the uncompressed
    package and the checkpoint in ``directory/base``."""
    if defect not in (None, "bits_mismatch"):
        raise ValueError(f"defect: expected 'bits_mismatch' or None, got {defect!r}")
    directory = Path(directory)
    base = bert_classifier(directory / "base", seed=seed)
    applied_bits = 6 if defect else DECLARED_BITS
    mlmodel = _compress(base.package, applied_bits)
    package = directory / "BertClassifierCompressed.mlpackage"
    mlmodel.save(str(package))
    declared = directory / "declared.toml"
    declared.write_text(_recipe(DECLARED_BITS))
    compression = {
        "declared": f"recipe={declared}",
        "declared_recipe": _recipe(DECLARED_BITS),
        "applied": [
            {
                "call": "palettize_weights",
                "op_type": "all but gather",
                "nbits": applied_bits,
                "mode": "kmeans",
            },
            {
                "call": "linear_quantize_weights",
                "op_type": "gather",
                "dtype": "int8",
                "mode": "linear_symmetric",
            },
        ],
        "weight_threshold": WEIGHT_THRESHOLD,
        "weights": _compressed_weights(mlmodel),
    }
    planted = (
        {"defect": defect, "detail": f"palettized with {applied_bits} bits, declared {DECLARED_BITS}"}
        if defect
        else None
    )
    return dataclasses.replace(
        base,
        producer="compressed.compressed_bert",
        description=(
            f"coremltools.optimize on the guide's BERT package: matmul weights palettize_weights "
            f"{applied_bits}-bit k-means, embeddings linear_quantize_weights int8"
        ),
        package=str(package),
        compression=compression,
        planted=planted,
    )
