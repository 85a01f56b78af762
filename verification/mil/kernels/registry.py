"""The kernel table: ``KERNELS`` maps a MIL op type to one torch kernel; ``register`` fills it.

The kernels live one module per op family beside this one, named like coremltools' op-definition
modules (``elementwise_binary``, ``reduction``, ``tensor_transformation`` ...).

Each kernel follows the semantics published with the op's definition in coremltools
(``coremltools.converters.mil.mil.ops.defs.iOS15`` .. ``iOS18``, "the op docs" below) and says which.

Calling convention, set up by the executor:
- data inputs arrive as torch CPU tensors (a tuple input such as ``concat.values`` as a list of them);
- attribute inputs (the names in ``fn.attributes``: axes, strides, pad_type, dtype strings, ...) arrive
  as plain Python values: int, float, bool, str, or a list of ints;
- a kernel computes in the dtype of its data inputs and returns a tensor or a tuple of tensors. The
  executor stores the result in the dtype the program declares for the output (and rounds to fp16 in
  the fp16-storage mode), so kernels never look at the program's declared types.

Two flags tell the executor about a kernel:
- ``moves_data``: the output only rearranges input elements (no arithmetic), so rounding it to fp16
  again is never needed;
- ``fp32_accumulate``: a matrix product. torch's CPU float16 GEMMs accumulate in fp32 (measured: their
  results match fp32-compute-then-round-once up to last-bit summation-order differences) and are ~100x
  slower, so the native-fp16 mode runs these kernels in fp32 and rounds the output once.
"""

from __future__ import annotations

KERNELS: dict = {}


def register(op_type, attributes=(), moves_data=False, fp32_accumulate=False):
    """Register ``fn`` as the kernel of ``op_type``; ``attributes`` name its non-tensor inputs."""

    def decorate(fn):
        fn.op_type = op_type
        fn.attributes = frozenset(attributes)
        fn.moves_data = moves_data
        fn.fp32_accumulate = fp32_accumulate
        KERNELS[op_type] = fn
        return fn

    return decorate


def positive_axis(axis, rank):
    return axis + rank if axis < 0 else axis


def positive_axes(axes, rank):
    return [positive_axis(int(a), rank) for a in axes]


def axes_or_all(x, axes):
    """``axes`` as positive dims, every dim when ``axes`` is None (the reductions' convention)."""
    return list(range(x.dim())) if axes is None else positive_axes(axes, x.dim())
