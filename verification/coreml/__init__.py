"""Core ML conversion of ANE models and baselines (conversion runs on every platform)."""

from .convert import convert, pass_pipeline

__all__ = ["convert", "pass_pipeline"]
