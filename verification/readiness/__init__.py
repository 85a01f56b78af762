"""Static ANE readiness of a converted program: op counts, copies, fusion, padding, memory, off-ANE ops.

``analysis`` reads the program into a ``ReadinessReport``; ``gates`` turns one into checks and puts two
side by side.
"""

from .analysis import ESTIMATE_MODEL, Finding, ReadinessReport, Tensor, analyze, tensor_bytes
from .gates import NO_LAYER_NORMS, READINESS_METRICS, Comparison, compare, readiness_checks

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
    "readiness_checks",
    "tensor_bytes",
]
