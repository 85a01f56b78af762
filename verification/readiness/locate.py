"""Where an op of a converted program sits among its layer norms: embeddings, layer k, or head.

The layer norms mark the encoder's structure in any program, saved or in memory: before the first one
is the embedding, after the last one the head, and a post-LN encoder (one embedding layer norm, then two
per layer) has layer ``k`` between its norms ``2k`` and ``2k + 2``. The torch module an op came from is
``verification.coreml.scopes``' business (it survives a save); this is the structural place beside it.
"""

from __future__ import annotations


def layer_of(index: int, norm_positions: list[int], layers_inferred: bool) -> str | None:
    """The place of the top-level op ``index`` among the layer norms at ``norm_positions`` (sorted)."""
    if not norm_positions:
        return None
    if index <= norm_positions[0]:
        return "embeddings (up to the first layer norm)"
    if index > norm_positions[-1]:
        return "head (after the last layer norm)"
    before = sum(position < index for position in norm_positions)  # 1 .. len - 1
    if layers_inferred:
        return f"layer {(before - 1) // 2}"
    return f"between layer norms {before} and {before + 1} of {len(norm_positions)}"
