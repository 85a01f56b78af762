"""MIL reference kernels, one module per op family (mirroring coremltools' ``mil/ops/defs`` modules).

Importing this package imports every family, so ``KERNELS`` holds every kernel.
"""

from . import (  # noqa: F401 (each module registers its kernels on import)
    activation,
    constexpr,
    elementwise_binary,
    elementwise_unary,
    linear,
    normalization,
    reduction,
    scatter_gather,
    state,
    tensor_operation,
    tensor_transformation,
)
from .registry import KERNELS, register

__all__ = ["KERNELS", "register"]
