"""Layer pairs: every ANE layer beside its baseline, one module per layer family (mirrors ``ane_layers/``).

Importing this package imports every family, so ``REGISTRY`` holds every pair.
"""

# isort: off (import order is registration order: the layer table lists the pairs in it)
from . import (  # noqa: F401 (each module registers its pairs on import)
    attention,
    feed_forward,
    layer_norm,
    linear,
    llama,
    rms_norm,
    rotary,
    transformer_layers,
    transformers_encoders,
)

# isort: on
from .registry import REGISTRY, Case, LayerPair, randomize_parameters, register

__all__ = ["REGISTRY", "Case", "LayerPair", "randomize_parameters", "register"]
