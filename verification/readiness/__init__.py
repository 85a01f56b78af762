"""Static ANE readiness of a converted program: op counts, copies, fusion, padding, memory, off-ANE ops.

``analysis`` reads the program into a ``ReadinessReport``; ``locate`` says where an op came from (its
place among the layer norms, its torch module); ``gates`` turns a report into checks, names the ops a
check counted, and puts two reports side by side.
"""

from .analysis import (
    ESTIMATE_MODEL,
    Finding,
    ReadinessReport,
    Tensor,
    analyze,
    is_copy,
    reshape_moves_data,
    tensor_bytes,
)
from .gates import (
    NO_LAYER_NORMS,
    READINESS_METRICS,
    Comparison,
    compare,
    describe_finding,
    findings_by_check,
    readiness_checks,
)

__all__ = [
    "ESTIMATE_MODEL",
    "NO_LAYER_NORMS",
    "READINESS_METRICS",
    "Comparison",
    "Finding",
    "ReadinessReport",
    "Tensor",
    "analyze",
    "compare",
    "describe_finding",
    "findings_by_check",
    "is_copy",
    "readiness_checks",
    "reshape_moves_data",
    "tensor_bytes",
]
