"""Torch-level equivalence: Hypothesis strategies, the layer-pair registry, running and asserting pairs."""
