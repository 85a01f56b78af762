"""One copy of each decoded constant for every executor in the process.

A decoder package's prefill and decode functions read the same weights, and a run builds several
executors of one package (the step checks' two functions, then the hazard finder's fp32 and fp16
passes of each): each used to decode its own copy of every weight. Here a constant is decoded once per
storage form (dtype, rounding) and shared by content: the key is a digest of its bytes, so two constants
with the same values share one tensor whatever function or executor they come from, and a changed weight
never does. Entries live as long as some executor holds them (a weak-value map).

Shared tensors are read-only by contract: the executor's kernels never write into a constant (state
writes go to the state's own tensors), and ``replaced_constants`` swaps references, never values.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Callable

import numpy as np
import torch

MIN_BYTES = 1 << 16  # smaller constants are copied per executor: hashing them costs more than it saves
_STORE: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def content_key(value: np.ndarray) -> tuple | None:
    """What identifies ``value``'s contents (dtype, size, a 128-bit digest), or None for a small one.

    Not its shape: a tied embedding is a (vocab, hidden) gather table and a (vocab, hidden, 1, 1) head
    weight with the same bytes, one tensor here (``shaped`` gives each reader its shape)."""
    array = np.ascontiguousarray(value)
    if array.nbytes < MIN_BYTES:
        return None
    digest = hashlib.blake2b(memoryview(array).cast("B"), digest_size=16).digest()
    return (array.dtype.str, array.nbytes, digest)


def shaped(tensor: torch.Tensor, shape) -> torch.Tensor:
    """``tensor`` as ``shape`` (a view of the same memory when only the shape differs)."""
    shape = tuple(shape)
    return tensor if tuple(tensor.shape) == shape else tensor.reshape(shape)


def shared(key: tuple | None, form: str, decode: Callable[[], torch.Tensor]) -> torch.Tensor:
    """The tensor stored for contents ``key`` in storage ``form``, decoded by ``decode()`` only the first
    time (every time when ``key`` is None)."""
    if key is None:
        return decode()
    found = _STORE.get((form, key))
    if found is None:
        found = decode()
        _STORE[(form, key)] = found
    return found


def held_bytes() -> int:
    """Bytes of the shared tensors alive now (for tests and benchmarks)."""
    return sum(t.untyped_storage().nbytes() for t in list(_STORE.values()))
