"""Core ML conversion of ANE models and baselines, saving, and prediction on every platform."""

from .baselines import BaselineForConversion
from .convert import convert, pass_pipeline
from .package import PackageError, load, save
from .predict import BACKENDS, coreml_runtime_available, predict, resolve_backend

__all__ = [
    "BACKENDS",
    "BaselineForConversion",
    "PackageError",
    "convert",
    "coreml_runtime_available",
    "load",
    "pass_pipeline",
    "predict",
    "resolve_backend",
    "save",
]
