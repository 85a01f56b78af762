"""Equivalence verification: metrics, strategies, layer pairs, Core ML conversion and execution."""
