"""Apple's Core AI as a second conversion target: convert a torch model (``torch.export`` + Core AI's
decompositions + ``coreai_torch.TorchConverter``), save the ``.aimodel``, run it through Core AI's
runtime (the interpreter bundled in ``coreai-core`` on Linux; the OS runtime on macOS 27), check it
against Core AI's own ANE authoring rules and its NaN/Inf validator.

Needs the optional ``coreai`` extra; importing this package does not (every entry point checks first and
raises ``CoreAIUnavailable`` with the install command).
"""

from .asset import AssetError, is_aimodel, open_asset, save
from .convert import (
    PRECISIONS,
    CoreAIConversionError,
    CoreAIProgram,
    NotDecomposedError,
    convert,
    convert_exported,
    export,
)
from .extra import INSTALL_HINT, CoreAIUnavailable, available, missing_reason, require
from .runtime import (
    COMPUTE_UNITS,
    CoreAIRuntimeError,
    Session,
    describe,
    function_descriptors,
    predict,
    predict_async,
)

__all__ = [
    "COMPUTE_UNITS",
    "INSTALL_HINT",
    "PRECISIONS",
    "Session",
    "AssetError",
    "CoreAIConversionError",
    "CoreAIProgram",
    "CoreAIRuntimeError",
    "CoreAIUnavailable",
    "NotDecomposedError",
    "available",
    "convert",
    "convert_exported",
    "describe",
    "export",
    "function_descriptors",
    "is_aimodel",
    "missing_reason",
    "open_asset",
    "predict",
    "predict_async",
    "require",
    "save",
]
