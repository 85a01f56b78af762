"""Core ML conversion of ANE models and baselines, saving, and prediction on every platform."""

from .baselines import BaselineForConversion
from .convert import STATE_TARGET, convert, pass_pipeline
from .multifunction import function_names, package_size, require_functions, save_multifunction
from .package import PackageError, load, save
from .predict import BACKENDS, coreml_runtime_available, predict, resolve_backend
from .session import SessionError, SessionState, StatefulSession

__all__ = [
    "BACKENDS",
    "BaselineForConversion",
    "PackageError",
    "STATE_TARGET",
    "SessionError",
    "SessionState",
    "StatefulSession",
    "convert",
    "coreml_runtime_available",
    "function_names",
    "load",
    "package_size",
    "pass_pipeline",
    "predict",
    "require_functions",
    "resolve_backend",
    "save",
    "save_multifunction",
]
