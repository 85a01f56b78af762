"""A program function's inputs: what each expects (``InputSpec``) and the checks run before every call.

Every mismatch is an ``InputError`` that names the input, what the program expects and what came.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch


class InputError(ValueError):
    """``run`` was given inputs that do not match the program's inputs."""


@dataclass(frozen=True)
class InputSpec:
    """A function input: its shape (ints, or None for a flexible dimension) and MIL dtype name."""

    name: str
    shape: tuple
    dtype: str


def check_input_names(expected: Mapping[str, InputSpec], inputs) -> None:
    """``inputs`` must be a mapping with exactly the expected names."""
    if not isinstance(inputs, Mapping):
        raise InputError(
            f"inputs must be a mapping of input name to numpy array, got {type(inputs).__name__}"
        )
    missing = [name for name in expected if name not in inputs]
    unexpected = [name for name in inputs if name not in expected]
    if missing or unexpected:
        raise InputError(
            f"input names do not match the program: missing {missing}, unexpected {unexpected}; "
            f"expected exactly {list(expected)}"
        )


def validated_array(spec: InputSpec, value) -> np.ndarray:
    """``value`` (an array or tensor) as a numpy array, once its shape and dtype kind match ``spec``."""
    array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    expected_shape = tuple("flexible" if d is None else d for d in spec.shape)
    if array.ndim != len(spec.shape) or any(
        d is not None and d != got for d, got in zip(spec.shape, array.shape, strict=False)
    ):
        raise InputError(
            f"input {spec.name!r}: expected shape {expected_shape} (rank {len(spec.shape)}), "
            f"received shape {array.shape} (rank {array.ndim})"
        )
    if spec.dtype in ("fp16", "fp32"):
        if array.dtype.kind != "f":
            raise InputError(
                f"input {spec.name!r}: expected a floating-point array ({spec.dtype}), "
                f"received dtype {array.dtype}"
            )
    elif spec.dtype == "bool":
        if array.dtype.kind != "b":
            raise InputError(f"input {spec.name!r}: expected a bool array, received dtype {array.dtype}")
    else:
        if array.dtype.kind not in "iu":
            raise InputError(
                f"input {spec.name!r}: expected an integer array ({spec.dtype}), received dtype {array.dtype}"
            )
        info = np.iinfo(np.int32)
        if array.size and (array.min() < info.min or array.max() > info.max):
            raise InputError(
                f"input {spec.name!r}: values [{array.min()}, {array.max()}] do not fit {spec.dtype}"
            )
    return array
