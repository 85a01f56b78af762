"""One torch kernel per MIL op type, registered in ``KERNELS`` (op type -> function).

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

import math

import numpy as np
import torch
import torch.nn.functional as F

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


def _axis(axis, rank):
    return axis + rank if axis < 0 else axis


def _axes(axes, rank):
    return [_axis(int(a), rank) for a in axes]


# ------------------------------------------------------- elementwise binary (iOS15.elementwise_binary)


@register("add")
def add(x, y):
    """iOS15.elementwise_binary.add: x + y with numpy broadcasting."""
    return torch.add(x, y)


@register("sub")
def sub(x, y):
    """iOS15.elementwise_binary.sub: x - y with numpy broadcasting."""
    return torch.sub(x, y)


@register("mul")
def mul(x, y):
    """iOS15.elementwise_binary.mul: x * y with numpy broadcasting."""
    return torch.mul(x, y)


@register("real_div")
def real_div(x, y):
    """iOS15.elementwise_binary.real_div: true division x / y (an int32 result is truncated by the executor's
    cast to the declared int32 type)."""
    return torch.true_divide(x, y)


@register("floor_div")
def floor_div(x, y):
    """iOS15.elementwise_binary.floor_div: x / y rounded towards negative infinity."""
    return torch.div(x, y, rounding_mode="floor")


@register("mod")
def mod(x, y):
    """iOS15.elementwise_binary.mod: x % y with the sign of the divisor (Python/numpy ``%``)."""
    return torch.remainder(x, y)


@register("pow")
def pow_(x, y):
    """iOS15.elementwise_binary.pow: x ** y element-wise."""
    return torch.pow(x, y)


@register("maximum")
def maximum(x, y):
    """iOS15.elementwise_binary.maximum: element-wise max with broadcasting."""
    return torch.maximum(x, y)


@register("minimum")
def minimum(x, y):
    """iOS15.elementwise_binary.minimum: element-wise min with broadcasting."""
    return torch.minimum(x, y)


@register("equal")
def equal(x, y):
    """iOS15.elementwise_binary.equal: x == y, bool output."""
    return torch.eq(x, y)


@register("not_equal")
def not_equal(x, y):
    """iOS15.elementwise_binary.not_equal: x != y, bool output."""
    return torch.ne(x, y)


@register("greater")
def greater(x, y):
    """iOS15.elementwise_binary.greater: x > y, bool output."""
    return torch.gt(x, y)


@register("greater_equal")
def greater_equal(x, y):
    """iOS15.elementwise_binary.greater_equal: x >= y, bool output."""
    return torch.ge(x, y)


@register("less")
def less(x, y):
    """iOS15.elementwise_binary.less: x < y, bool output."""
    return torch.lt(x, y)


@register("less_equal")
def less_equal(x, y):
    """iOS15.elementwise_binary.less_equal: x <= y, bool output."""
    return torch.le(x, y)


@register("logical_and")
def logical_and(x, y):
    """iOS15.elementwise_binary.logical_and: nonzero means true, bool output."""
    return torch.logical_and(x, y)


@register("logical_or")
def logical_or(x, y):
    """iOS15.elementwise_binary.logical_or: nonzero means true, bool output."""
    return torch.logical_or(x, y)


@register("logical_xor")
def logical_xor(x, y):
    """iOS15.elementwise_binary.logical_xor: nonzero means true, bool output."""
    return torch.logical_xor(x, y)


# ---------------------------------------------------------------- elementwise unary (iOS15.elementwise_unary)


@register("abs")
def abs_(x):
    """iOS15.elementwise_unary.abs: |x|."""
    return torch.abs(x)


@register("ceil")
def ceil(x):
    """iOS15.elementwise_unary.ceil."""
    return torch.ceil(x)


@register("floor")
def floor(x):
    """iOS15.elementwise_unary.floor: round towards negative infinity."""
    return torch.floor(x)


@register("round")
def round_(x):
    """iOS15.elementwise_unary.round: nearest integer, halves to even (0.5 -> 0, as the op docs say)."""
    return torch.round(x)


@register("sign")
def sign(x):
    """iOS15.elementwise_unary.sign: -1, 0 or 1."""
    return torch.sign(x)


@register("exp")
def exp(x):
    """iOS15.elementwise_unary.exp: e ** x."""
    return torch.exp(x)


@register("exp2")
def exp2(x):
    """iOS15.elementwise_unary.exp2: 2 ** x."""
    return torch.exp2(x)


@register("log", attributes=("epsilon",))
def log(x, epsilon=1e-45):
    """iOS15.elementwise_unary.log: log(x + epsilon), epsilon defaults to 1e-45."""
    return torch.log(x + epsilon)


@register("sqrt")
def sqrt(x):
    """iOS15.elementwise_unary.sqrt."""
    return torch.sqrt(x)


@register("rsqrt", attributes=("epsilon",))
def rsqrt(x, epsilon=1e-12):
    """iOS15.elementwise_unary.rsqrt: 1 / sqrt(x + epsilon), epsilon defaults to 1e-12."""
    return torch.rsqrt(x + epsilon)


@register("inverse", attributes=("epsilon",))
def inverse(x, epsilon=1e-4):
    """iOS15.elementwise_unary.inverse: 1 / (x + epsilon), epsilon defaults to 1e-4."""
    return torch.reciprocal(x + epsilon)


@register("square")
def square(x):
    """iOS15.elementwise_unary.square: x * x."""
    return torch.mul(x, x)


@register("erf")
def erf(x):
    """iOS15.elementwise_unary.erf: Gauss error function."""
    return torch.erf(x)


@register("sin")
def sin(x):
    """iOS15.elementwise_unary.sin."""
    return torch.sin(x)


@register("cos")
def cos(x):
    """iOS15.elementwise_unary.cos."""
    return torch.cos(x)


@register("tanh")
def tanh(x):
    """iOS15.elementwise_unary.tanh: hyperbolic tangent."""
    return torch.tanh(x)


@register("logical_not")
def logical_not(x):
    """iOS15.elementwise_unary.logical_not: nonzero means true, bool output."""
    return torch.logical_not(x)


@register("clip", attributes=("alpha", "beta"))
def clip(x, alpha, beta):
    """iOS15.elementwise_unary.clip: min(max(x, alpha), beta)."""
    return torch.clamp(x, min=alpha, max=beta)


@register("threshold", attributes=("alpha",))
def threshold(x, alpha):
    """iOS15.elementwise_unary.threshold: max(x, alpha)."""
    return torch.clamp(x, min=alpha)


_TORCH_DTYPE_OF_MIL_NAME = {
    "int8": torch.int8,
    "uint8": torch.uint8,
    "int16": torch.int16,
    "uint16": torch.int32,  # torch has few uint16 kernels; int32 holds every uint16 value
    "int32": torch.int32,
    "bool": torch.bool,
}


@register("cast", attributes=("dtype",))
def cast(x, dtype):
    """iOS15/iOS17.elementwise_unary.cast: float -> int truncates towards zero (numpy ``astype``),
    anything -> bool is ``x != 0``. Casts between float types return floats unchanged: the executor
    stores them in the declared type, and rounds to fp16 only in the fp16 modes."""
    if dtype in ("fp16", "fp32", "fp64"):
        return x if x.is_floating_point() else x.to(torch.float32)
    if dtype == "bool":
        return x != 0
    if dtype not in _TORCH_DTYPE_OF_MIL_NAME:
        raise ValueError(f"cast: unknown dtype {dtype!r}")
    if x.is_floating_point():
        x = torch.trunc(x)
    return x.to(_TORCH_DTYPE_OF_MIL_NAME[dtype])


# ---------------------------------------------------------------- activations (iOS15.activation)


@register("relu")
def relu(x):
    """iOS15.activation.relu: max(x, 0)."""
    return torch.relu(x)


@register("relu6")
def relu6(x):
    """iOS15.activation.relu6: min(max(x, 0), 6)."""
    return torch.clamp(x, 0.0, 6.0)


@register("leaky_relu", attributes=("alpha",))
def leaky_relu(x, alpha=0.01):
    """iOS15.activation.leaky_relu: x if x >= 0 else alpha * x."""
    return F.leaky_relu(x, alpha)


@register("sigmoid")
def sigmoid(x):
    """iOS15.activation.sigmoid: 1 / (1 + exp(-x))."""
    return torch.sigmoid(x)


@register("silu")
def silu(x):
    """iOS15.activation.silu: x * sigmoid(x)."""
    return F.silu(x)


@register("softplus")
def softplus(x):
    """iOS15.activation.softplus: log(1 + exp(x))."""
    return F.softplus(x)


@register("gelu", attributes=("mode",))
def gelu(x, mode="EXACT"):
    """iOS15.activation.gelu: EXACT 0.5 x (1 + erf(x / sqrt 2)); TANH_APPROXIMATION
    0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))); SIGMOID_APPROXIMATION x * sigmoid(1.702 x)."""
    if mode == "EXACT":
        return F.gelu(x)
    if mode == "TANH_APPROXIMATION":
        return F.gelu(x, approximate="tanh")
    if mode == "SIGMOID_APPROXIMATION":
        return x * torch.sigmoid(1.702 * x)
    raise ValueError(
        f"gelu: unknown mode {mode!r}; expected EXACT, TANH_APPROXIMATION or SIGMOID_APPROXIMATION"
    )


@register("softmax", attributes=("axis",))
def softmax(x, axis=-1):
    """iOS15.activation.softmax: exp(x) / sum(exp(x), axis), axis defaults to -1."""
    return torch.softmax(x, axis)


# ---------------------------------------------------------------- reductions (iOS15.reduction)


def _reduce_dims(x, axes):
    return list(range(x.dim())) if axes is None else _axes(axes, x.dim())


@register("reduce_sum", attributes=("axes", "keep_dims"))
def reduce_sum(x, axes=None, keep_dims=False):
    """iOS15.reduction.reduce_sum: sum over ``axes`` (all axes when None)."""
    return torch.sum(x, dim=_reduce_dims(x, axes), keepdim=keep_dims)


@register("reduce_mean", attributes=("axes", "keep_dims"))
def reduce_mean(x, axes=None, keep_dims=False):
    """iOS15.reduction.reduce_mean: mean over ``axes`` (all axes when None)."""
    return torch.mean(x, dim=_reduce_dims(x, axes), keepdim=keep_dims)


@register("reduce_prod", attributes=("axes", "keep_dims"))
def reduce_prod(x, axes=None, keep_dims=False):
    """iOS15.reduction.reduce_prod: product over ``axes`` (all axes when None)."""
    for dim in sorted(_reduce_dims(x, axes), reverse=True):
        x = torch.prod(x, dim=dim, keepdim=keep_dims)
    return x


@register("reduce_max", attributes=("axes", "keep_dims"))
def reduce_max(x, axes=None, keep_dims=False):
    """iOS15.reduction.reduce_max: max over ``axes`` (all axes when None)."""
    return torch.amax(x, dim=_reduce_dims(x, axes), keepdim=keep_dims)


@register("reduce_min", attributes=("axes", "keep_dims"))
def reduce_min(x, axes=None, keep_dims=False):
    """iOS15.reduction.reduce_min: min over ``axes`` (all axes when None)."""
    return torch.amin(x, dim=_reduce_dims(x, axes), keepdim=keep_dims)


@register("reduce_sum_square", attributes=("axes", "keep_dims"))
def reduce_sum_square(x, axes=None, keep_dims=False):
    """iOS15.reduction.reduce_sum_square: sum of x**2 over ``axes``."""
    return torch.sum(x * x, dim=_reduce_dims(x, axes), keepdim=keep_dims)


@register("reduce_l2_norm", attributes=("axes", "keep_dims"))
def reduce_l2_norm(x, axes=None, keep_dims=False):
    """iOS15.reduction.reduce_l2_norm: sqrt(sum of x**2) over ``axes``."""
    return torch.sqrt(torch.sum(x * x, dim=_reduce_dims(x, axes), keepdim=keep_dims))


@register("reduce_log_sum_exp", attributes=("axes", "keep_dims"))
def reduce_log_sum_exp(x, axes=None, keep_dims=False):
    """iOS15.reduction.reduce_log_sum_exp: log(sum(exp(x))) over ``axes``."""
    return torch.logsumexp(x, dim=_reduce_dims(x, axes), keepdim=keep_dims)


@register("reduce_argmax", attributes=("axis", "keep_dims", "output_dtype"))
def reduce_argmax(x, axis=-1, keep_dims=False, output_dtype="int32"):
    """iOS15/iOS17.reduction.reduce_argmax: index of the maximum along ``axis`` (ties: first index)."""
    return torch.argmax(x, dim=axis, keepdim=keep_dims)


@register("reduce_argmin", attributes=("axis", "keep_dims", "output_dtype"))
def reduce_argmin(x, axis=-1, keep_dims=False, output_dtype="int32"):
    """iOS15/iOS17.reduction.reduce_argmin: index of the minimum along ``axis`` (ties: first index)."""
    return torch.argmin(x, dim=axis, keepdim=keep_dims)


# ---------------------------------------------------------------- linear algebra (iOS15.linear, iOS15.conv)


@register("matmul", attributes=("transpose_x", "transpose_y"), fp32_accumulate=True)
def matmul(x, y, transpose_x=False, transpose_y=False):
    """iOS15.linear.matmul: numpy matmul broadcasting; ``transpose_*`` swaps the last two axes of a
    rank >= 2 operand."""
    if transpose_x and x.dim() >= 2:
        x = x.transpose(-1, -2)
    if transpose_y and y.dim() >= 2:
        y = y.transpose(-1, -2)
    return torch.matmul(x, y)


@register("linear", fp32_accumulate=True)
def linear(x, weight, bias=None):
    """iOS15.linear.linear: x @ weight.T + bias, weight of shape (D_out, D_in)."""
    return F.linear(x, weight, bias)


@register("einsum", attributes=("equation",), fp32_accumulate=True)
def einsum(values, equation):
    """iOS15.linear.einsum: the op docs allow only a batched matrix product on axes -3 and -1
    ("nchw,nwhu->nchu", "chw,whr->chr" and renamings), broadcasting the batch axes of size 1; torch's
    einsum implements that and every renaming."""
    return torch.einsum(equation, *values)


def _same_padding(in_sizes, kernel_sizes, strides, dilations, extra_before):
    pad = []
    for size, kernel, stride, dilation in zip(in_sizes, kernel_sizes, strides, dilations, strict=True):
        effective = (kernel - 1) * dilation + 1
        total = max(0, stride * math.ceil(size / stride) - size + effective - stride)
        small, large = total // 2, total - total // 2
        pad += [large, small] if extra_before else [small, large]
    return pad


def _conv_padding(x, weight, strides, pad_type, pad, dilations):
    spatial = x.dim() - 2
    if pad_type == "valid":
        return [0] * (2 * spatial)
    if pad_type == "custom":
        return list(pad)
    if pad_type in ("same", "same_lower"):
        return _same_padding(x.shape[2:], weight.shape[2:], strides, dilations, pad_type == "same_lower")
    raise ValueError(f"conv: unknown pad_type {pad_type!r}; expected valid, custom, same or same_lower")


_CONV_BY_RANK = {3: F.conv1d, 4: F.conv2d, 5: F.conv3d}


@register("conv", attributes=("strides", "pad_type", "pad", "dilations", "groups"), fp32_accumulate=True)
def conv(x, weight, bias=None, strides=None, pad_type="valid", pad=None, dilations=None, groups=1):
    """iOS15.conv.conv: 1-3 spatial dims, weight (C_out, C_in/groups, *K). ``pad`` lists (before, after)
    per spatial dim; ``same`` pads total = max(0, s*ceil(i/s) - i + dilated_k - s) with the odd element
    after, ``same_lower`` with it before (the op docs' pad_type prose, as coremltools' aggregated_pad)."""
    spatial = x.dim() - 2
    strides = list(strides) if strides is not None else [1] * spatial
    dilations = list(dilations) if dilations is not None else [1] * spatial
    padding = _conv_padding(x, weight, strides, pad_type, pad, dilations)
    before, after = padding[0::2], padding[1::2]
    if before == after:
        return _CONV_BY_RANK[x.dim()](x, weight, bias, strides, before, dilations, groups)
    torch_pad = []
    for b, a in zip(reversed(before), reversed(after), strict=True):
        torch_pad += [b, a]
    x = F.pad(x, torch_pad)
    return _CONV_BY_RANK[x.dim()](x, weight, bias, strides, 0, dilations, groups)


# ---------------------------------------------------------------- normalization (iOS15.normalization)


@register("layer_norm", attributes=("axes", "epsilon"))
def layer_norm(x, axes=None, gamma=None, beta=None, epsilon=1e-5):
    """iOS15.normalization.layer_norm: gamma * (x - E[x]) / sqrt(Var[x] + epsilon) + beta, mean and
    biased variance over ``axes`` (all axes when None); gamma/beta have shape x.shape[axes]."""
    rank = x.dim()
    dims = list(range(rank)) if axes is None else sorted(_axes(axes, rank))
    if dims == list(range(rank - len(dims), rank)):
        shape = x.shape[rank - len(dims) :]
        return F.layer_norm(x, shape, gamma, beta, epsilon)
    mean = torch.mean(x, dim=dims, keepdim=True)
    centered = x - mean
    variance = torch.mean(centered * centered, dim=dims, keepdim=True)
    y = centered * torch.rsqrt(variance + epsilon)
    param_shape = [x.shape[i] if i in dims else 1 for i in range(rank)]
    if gamma is not None:
        y = y * gamma.reshape(param_shape)
    if beta is not None:
        y = y + beta.reshape(param_shape)
    return y


@register("batch_norm", attributes=("epsilon",))
def batch_norm(x, mean, variance, gamma=None, beta=None, epsilon=1e-5):
    """iOS15.normalization.batch_norm: gamma_c (x - mean_c) / sqrt(variance_c + epsilon) + beta_c over the
    channel axis 1 (inference form)."""
    return F.batch_norm(x, mean, variance, gamma, beta, False, 0.0, epsilon)


@register("instance_norm", attributes=("epsilon",))
def instance_norm(x, gamma=None, beta=None, epsilon=1e-5):
    """iOS15.normalization.instance_norm: per sample and channel over the spatial axes."""
    return F.instance_norm(x, weight=gamma, bias=beta, eps=epsilon)


@register("l2_norm", attributes=("epsilon",))
def l2_norm(x, epsilon=1e-6):
    """iOS15.normalization.l2_norm: x / sqrt(sum(x**2) + epsilon) over the last three axes."""
    dims = [-3, -2, -1]
    return x / torch.sqrt(torch.sum(x * x, dim=dims, keepdim=True) + epsilon)


# ------------------------------------------------------- shape and layout (iOS15.tensor_transformation)


@register("transpose", attributes=("perm",), moves_data=True)
def transpose(x, perm):
    """iOS15.tensor_transformation.transpose: permute axes by ``perm`` (a view, no copy)."""
    return x.permute(*perm)


@register("reshape", attributes=("shape",), moves_data=True)
def reshape(x, shape):
    """iOS15/iOS17.tensor_transformation.reshape: 0 copies the matching input dim, counted from the right
    (iOS17 rule; for len(shape) == rank(x) it equals iOS15's positional rule), -1 is inferred."""
    rank, length = x.dim(), len(shape)
    target = []
    for i, size in enumerate(shape):
        if size == 0:
            j = rank - (length - i)
            size = x.shape[j] if j >= 0 else 1
        target.append(int(size))
    return x.reshape(target)


@register("expand_dims", attributes=("axes",), moves_data=True)
def expand_dims(x, axes):
    """iOS15.tensor_transformation.expand_dims: insert size-1 axes; negative axes count in the output rank."""
    out_rank = x.dim() + len(axes)
    for axis in sorted(_axes(axes, out_rank)):
        x = x.unsqueeze(axis)
    return x


@register("squeeze", attributes=("axes",), moves_data=True)
def squeeze(x, axes=None):
    """iOS15.tensor_transformation.squeeze: drop the given size-1 axes (non-unit axes are ignored, as in
    PyTorch), or every size-1 axis when ``axes`` is None."""
    if axes is None:
        return x.squeeze()
    return x.squeeze(tuple(_axes(axes, x.dim())))


@register("flatten2d", attributes=("axis",), moves_data=True)
def flatten2d(x, axis=1):
    """iOS15.tensor_operation.flatten2d: (prod(shape[:axis]), prod(shape[axis:])); axis in [-rank, rank],
    negative counts from the end."""
    axis = _axis(axis, x.dim())
    return x.reshape(math.prod(x.shape[:axis]), -1)


def _python_slice_indices(size, begin, end, stride):
    return torch.arange(*slice(begin, end, stride).indices(size), dtype=torch.long)


@register(
    "slice_by_index",
    attributes=("begin", "end", "stride", "begin_mask", "end_mask", "squeeze_mask"),
    moves_data=True,
)
def slice_by_index(x, begin, end, stride=None, begin_mask=None, end_mask=None, squeeze_mask=None):
    """iOS15.tensor_transformation.slice_by_index: per axis the Python slice begin:end:stride (negative
    values count from the end); begin_mask/end_mask ignore begin/end; squeeze_mask takes the single
    element at ``begin`` and drops the axis."""
    rank = x.dim()
    stride = stride or [1] * rank
    begin_mask = begin_mask or [False] * rank
    end_mask = end_mask or [False] * rank
    squeeze_mask = squeeze_mask or [False] * rank
    for axis in range(rank):
        b = None if begin_mask[axis] else int(begin[axis])
        e = None if end_mask[axis] else int(end[axis])
        s = int(stride[axis])
        if squeeze_mask[axis]:
            index = b if b is not None else (0 if s > 0 else -1)
            x = x.narrow(axis, index + x.shape[axis] if index < 0 else index, 1)
        elif s > 0:
            start, stop, step = slice(b, e, s).indices(x.shape[axis])
            x = x.narrow(axis, start, max(0, stop - start))[
                (slice(None),) * axis + (slice(None, None, step),)
            ]
        else:
            x = x.index_select(axis, _python_slice_indices(x.shape[axis], b, e, s))
    dropped = [axis for axis in range(rank) if squeeze_mask[axis]]
    return x.squeeze(tuple(dropped)) if dropped else x


@register("slice_by_size", attributes=("begin", "size"), moves_data=True)
def slice_by_size(x, begin, size):
    """iOS15.tensor_transformation.slice_by_size: x[begin : begin + size] per axis, size -1 to the end,
    negative begin counts from the end."""
    for axis, (b, n) in enumerate(zip(begin, size, strict=True)):
        b = int(b) + x.shape[axis] if b < 0 else int(b)
        x = x.narrow(axis, b, x.shape[axis] - b if n == -1 else int(n))
    return x


@register("reverse", attributes=("axes",), moves_data=True)
def reverse(x, axes=None):
    """iOS15.tensor_transformation.reverse: flip along ``axes`` (all axes when None)."""
    return torch.flip(x, _reduce_dims(x, axes))


# ---------------------------------------------------------------- tensor operations (iOS15.tensor_operation)


@register("identity", moves_data=True)
def identity(x):
    """iOS15.tensor_operation.identity: the input itself."""
    return x


@register("concat", attributes=("axis", "interleave"), moves_data=True)
def concat(values, axis, interleave=False):
    """iOS15.tensor_operation.concat: join along ``axis``; ``interleave`` alternates slices of
    equally-shaped inputs (output[0::n] = values[0], output[1::n] = values[1], ...)."""
    if not interleave:
        return torch.cat(values, dim=axis)
    axis = _axis(axis, values[0].dim())
    stacked = torch.stack(values, dim=axis + 1)
    shape = list(values[0].shape)
    shape[axis] *= len(values)
    return stacked.reshape(shape)


@register("stack", attributes=("axis",), moves_data=True)
def stack(values, axis):
    """iOS15.tensor_operation.stack: join equally-shaped inputs along a new ``axis``."""
    return torch.stack(values, dim=axis)


@register("split", attributes=("num_splits", "split_sizes", "axis"), moves_data=True)
def split(x, axis, num_splits=None, split_sizes=None):
    """iOS15.tensor_operation.split: ``split_sizes`` if given, else ``num_splits`` equal parts (views)."""
    if split_sizes is not None:
        return tuple(torch.split(x, [int(s) for s in split_sizes], dim=axis))
    return tuple(torch.chunk(x, int(num_splits), dim=axis))


@register("tile", attributes=("reps",), moves_data=True)
def tile(x, reps):
    """iOS15.tensor_operation.tile: repeat dim i ``reps[i]`` times."""
    return x.repeat(*[int(r) for r in reps])


@register("pad", attributes=("pad", "mode", "constant_val"))
def pad(x, pad, mode="constant", constant_val=0.0):
    """iOS15.tensor_operation.pad: ``pad`` lists (before, after) for the last len(pad)/2 axes, in axis
    order; modes constant, reflect and replicate."""
    torch_pad = []
    for i in reversed(range(len(pad) // 2)):
        torch_pad += [int(pad[2 * i]), int(pad[2 * i + 1])]
    if mode == "constant":
        return F.pad(x, torch_pad, mode="constant", value=constant_val)
    if mode not in ("reflect", "replicate"):
        raise ValueError(f"pad: unknown mode {mode!r}; expected constant, reflect or replicate")
    # torch pads only the last 1-3 axes in these modes and wants a batch axis: fold the leading axes.
    padded = len(torch_pad) // 2
    lead = x.shape[: x.dim() - padded]
    folded = x.reshape((1, max(1, math.prod(lead))) + tuple(x.shape[x.dim() - padded :]))
    out = F.pad(folded, torch_pad, mode=mode)
    return out.reshape(tuple(lead) + tuple(out.shape[2:]))


@register("fill", attributes=("shape", "value"))
def fill(shape, value=0.0):
    """iOS15.tensor_operation.fill: a tensor of ``shape`` filled with ``value``."""
    return torch.full([int(s) for s in shape], value)


@register("fill_like", attributes=("value",))
def fill_like(ref_tensor, value=0.0):
    """iOS16.tensor_operation.fill_like: a tensor shaped like ``ref_tensor`` filled with ``value``."""
    return torch.full(ref_tensor.shape, value)


@register("shape")
def shape(x):
    """iOS15.tensor_operation.shape: the int32 shape of ``x``."""
    return torch.tensor(x.shape, dtype=torch.int32)


@register("range_1d", attributes=("start", "end", "step"))
def range_1d(end, start, step):
    """iOS15.tensor_operation.range_1d: numpy arange(start, end, step). Float ranges: the length is
    ceil((end - start) / step) computed in fp32, as coremltools' type inference declares the output shape
    (in float64 it can differ: start 1e-12, end -1, step -1 gives 1 element, not 2); the values are
    start + i * step, rounded once."""
    if all(isinstance(v, int) for v in (start, end, step)):
        return torch.arange(start, end, step, dtype=torch.int32)
    start32, end32, step32 = np.float32(start), np.float32(end), np.float32(step)
    length = max(0, int(np.ceil((end32 - start32) / step32)))
    values = float(start32) + torch.arange(length, dtype=torch.float64) * float(step32)
    return values.to(torch.float32)


@register("cumsum", attributes=("axis", "exclusive", "reverse"))
def cumsum(x, axis=0, exclusive=False, reverse=False):
    """iOS15.tensor_operation.cumsum: inclusive (or exclusive: first element 0) running sum along ``axis``,
    optionally from the end."""
    if reverse:
        x = torch.flip(x, (axis,))
    y = torch.cumsum(x, dim=axis, dtype=x.dtype)
    if exclusive:
        y = y - x
    return torch.flip(y, (axis,)) if reverse else y


@register("topk", attributes=("k", "axis", "ascending", "sort", "return_indices", "output_indices_dtype"))
def topk(x, k=1, axis=-1, ascending=False, sort=True, return_indices=True, output_indices_dtype="int32"):
    """iOS15/iOS16/iOS17.tensor_operation.topk: the k largest (smallest when ``ascending``) values along
    ``axis`` and their indices; k = -1 takes all; the iOS16 ``return_indices`` drops the indices."""
    k = x.shape[axis] if k == -1 else k
    values, indices = torch.topk(x, k, dim=axis, largest=not ascending, sorted=True)
    return (values, indices) if return_indices else values


@register("argsort", attributes=("axis", "ascending"))
def argsort(x, axis=-1, ascending=False):
    """iOS15.tensor_operation.argsort: indices sorting ``x`` along ``axis`` (descending by default)."""
    return torch.argsort(x, dim=axis, descending=not ascending, stable=True)


@register("band_part", attributes=("lower", "upper"))
def band_part(x, lower=-1, upper=-1):
    """iOS15.tensor_operation.band_part: keep x[..., m, n] where (lower < 0 or m - n <= lower) and
    (upper < 0 or n - m <= upper), zero elsewhere."""
    rows, cols = x.shape[-2], x.shape[-1]
    m = torch.arange(rows)[:, None]
    n = torch.arange(cols)[None, :]
    keep = ((lower < 0) | (m - n <= lower)) & ((upper < 0) | (n - m <= upper))
    return torch.where(keep, x, torch.zeros((), dtype=x.dtype))


@register("one_hot", attributes=("one_hot_vector_size", "axis", "on_value", "off_value"))
def one_hot(indices, one_hot_vector_size, axis=-1, on_value=1, off_value=0):
    """iOS15.tensor_operation.one_hot: a new axis of length ``one_hot_vector_size`` at ``axis``."""
    hot = F.one_hot(indices.long(), int(one_hot_vector_size))
    out = torch.where(hot.bool(), torch.tensor(on_value), torch.tensor(off_value))
    return torch.movedim(out, -1, _axis(axis, indices.dim() + 1))


# ---------------------------------------------------------------- selection and gathers


@register("select")
def select(cond, a, b):
    """iOS15.control_flow.select: a where cond else b, with broadcasting."""
    return torch.where(cond.bool() if cond.dtype != torch.bool else cond, a, b)


def _checked_indices(indices, size, validate, allow_negative, op_type):
    indices = indices.long()
    if validate or allow_negative:
        low = -size if allow_negative else 0
        if indices.numel() and (indices.min() < low or indices.max() >= size):
            raise IndexError(
                f"{op_type}: index out of range [{low}, {size}): "
                f"min {int(indices.min())}, max {int(indices.max())}"
            )
    return torch.where(indices < 0, indices + size, indices) if allow_negative else indices


@register("gather", attributes=("axis", "batch_dims", "validate_indices"), moves_data=True)
def gather(x, indices, axis=0, batch_dims=0, validate_indices=False):
    """iOS15/iOS16/iOS17.scatter_gather.gather (tf.gather): output shape D[:axis] + N[batch_dims:] +
    D[axis+1:]; indices may be negative (iOS15/16 semantics, accepted here for every version); out-of-range
    indices always raise, naming the range."""
    axis = _axis(axis, x.dim())
    indices = _checked_indices(indices, x.shape[axis], True, True, "gather")
    if batch_dims == 0:
        if axis == 0 and indices.dim() > 0:
            flat = x.index_select(0, indices.reshape(-1))
            return flat.reshape(tuple(indices.shape) + tuple(x.shape[1:]))
        out = x.index_select(axis, indices.reshape(-1))
        return out.reshape(tuple(x.shape[:axis]) + tuple(indices.shape) + tuple(x.shape[axis + 1 :]))
    # batch_dims > 0: loop over the shared leading batch axes (rare; correctness over speed).
    batch_shape = tuple(x.shape[:batch_dims])
    xs = x.reshape((-1,) + tuple(x.shape[batch_dims:]))
    ids = indices.reshape((-1,) + tuple(indices.shape[batch_dims:]))
    parts = [gather(xb, ib, axis - batch_dims) for xb, ib in zip(xs, ids, strict=True)]
    out = torch.stack(parts)
    return out.reshape(batch_shape + tuple(out.shape[1:]))


@register("gather_along_axis", attributes=("axis", "validate_indices"), moves_data=True)
def gather_along_axis(x, indices, axis=0, validate_indices=False):
    """iOS15/iOS17.scatter_gather.gather_along_axis: numpy take_along_axis; negative indices count from
    the end; out-of-range indices raise."""
    axis = _axis(axis, x.dim())
    indices = _checked_indices(indices, x.shape[axis], True, True, "gather_along_axis")
    return torch.gather(x, axis, indices)


@register("gather_nd", attributes=("batch_dims", "validate_indices"), moves_data=True)
def gather_nd(x, indices, batch_dims=0, validate_indices=False):
    """iOS15/iOS16/iOS17.scatter_gather.gather_nd (tf.gather_nd): output shape
    K[:-1] + D[batch_dims + K[-1]:]; the last axis of ``indices`` indexes the axes of ``x`` that follow
    the ``batch_dims`` shared leading batch axes (iOS16 adds ``batch_dims``); out-of-range indices raise,
    naming the axis and its range."""
    depth = int(indices.shape[-1])
    batch_shape = tuple(x.shape[:batch_dims])
    if tuple(indices.shape[:batch_dims]) != batch_shape:
        raise ValueError(
            f"gather_nd: expected indices with the leading batch shape {batch_shape} of x "
            f"(batch_dims {batch_dims}), got indices of shape {tuple(indices.shape)}"
        )
    xs = x.reshape((-1,) + tuple(x.shape[batch_dims:]))
    idx = indices.long().reshape(xs.shape[0], -1, depth)
    for axis in range(depth):
        size = xs.shape[1 + axis]
        column = idx[..., axis]
        if column.numel() and (column.min() < 0 or column.max() >= size):
            raise IndexError(
                f"gather_nd: index out of range [0, {size}) on axis {batch_dims + axis} of x: "
                f"min {int(column.min())}, max {int(column.max())}"
            )
    batch = torch.arange(xs.shape[0])[:, None]
    out = xs[(batch,) + tuple(idx[..., i] for i in range(depth))]
    return out.reshape(tuple(indices.shape[:-1]) + tuple(x.shape[batch_dims + depth :]))
