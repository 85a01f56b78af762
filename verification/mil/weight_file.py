"""A package's weight file (``weights/weight.bin``), memory-mapped: every constant a read-only view.

coremltools' milproto frontend reads each constant of each function into its own numpy array (an fp16
one twice on the way). A decoder package's prefill and decode functions point at the same blobs (the
multifunction save stores shared values once), and a run loads the package several times (the step
checks, then the hazard finder per function): each load held its own copy of every weight. Here every
load of a file in the process shares one read-only mapping, and a constant is a view into it: the
weights occupy the page cache once, whatever the number of functions or loads.

The file is MIL's blob storage, version 2 (coremltools' ``BlobWriter``):

- a 64-byte header: ``count`` (uint32), ``version`` (uint32, 2), reserved;
- per blob, at the offset the program names, a 64-byte record: sentinel ``0xDEADBEEF`` (uint32), the
  data type (uint32), ``size_in_bytes`` (uint64), ``offset`` of the data (uint64, 64-byte aligned),
  ``padding_size_in_bits`` (uint64, sub-byte types only), reserved.

``load_program_views`` swaps coremltools' value loader for one that returns these views while a program
is read, for the byte-aligned dtypes; sub-byte blobs (palettized indices) and immediate values go through
coremltools' own loader, as before.
"""

from __future__ import annotations

import mmap
import os
import struct
import threading
import weakref
from contextlib import contextmanager

import numpy as np
from coremltools.converters.mil.frontend.milproto import load as milproto_load
from coremltools.converters.mil.mil import types

SENTINEL = 0xDEADBEEF
VERSION = 2
RECORD = struct.Struct("<IIQQQ")  # sentinel, data type, size in bytes, data offset, padding bits
HEADER = struct.Struct("<II")  # count, version
# MIL dtypes read as views: the value coremltools' loader returns for each is an array of this dtype
VIEW_DTYPES = {
    types.fp16: np.float16,
    types.fp32: np.float32,
    types.int8: np.int8,
    types.uint8: np.uint8,
    types.int16: np.int16,
    types.uint16: np.uint16,
    types.int32: np.int32,
    types.uint32: np.uint32,
}

_MAPPINGS: weakref.WeakValueDictionary = weakref.WeakValueDictionary()  # file identity -> mmap
_LOCK = threading.Lock()


class WeightFileError(ValueError):
    """The weight file does not hold what the program says is there."""


def mapping(path: str) -> mmap.mmap:
    """The process's one read-only mapping of ``path`` (a new one if the file changed since)."""
    status = os.stat(path)
    identity = (os.path.realpath(path), status.st_ino, status.st_size, status.st_mtime_ns)
    found = _MAPPINGS.get(identity)
    if found is None:
        if status.st_size < 64:
            raise WeightFileError(f"{path}: {status.st_size} bytes, shorter than the 64-byte header")
        with open(path, "rb") as file:
            found = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        _, version = HEADER.unpack_from(found, 0)
        if version != VERSION:
            raise WeightFileError(f"{path}: expected MIL blob storage version {VERSION}, got {version}")
        _MAPPINGS[identity] = found
    return found


def blob_view(path: str, offset: int, dtype, shape) -> np.ndarray:
    """The blob whose record is at ``offset`` in ``path``: a read-only ``dtype`` array of ``shape``."""
    data = mapping(path)
    if offset < 64 or offset + RECORD.size > len(data):
        raise WeightFileError(f"{path}: blob offset {offset} is outside the file ({len(data)} bytes)")
    sentinel, _, size, start, _ = RECORD.unpack_from(data, offset)
    if sentinel != SENTINEL:
        raise WeightFileError(f"{path}: no blob record at offset {offset} (sentinel {sentinel:#x})")
    count = int(np.prod(shape, dtype=np.int64))
    itemsize = np.dtype(dtype).itemsize
    if size != count * itemsize or start + size > len(data):
        raise WeightFileError(
            f"{path}: the blob at {offset} holds {size} bytes from {start}; expected {count} x {itemsize} "
            f"bytes for shape {tuple(shape)} within the file's {len(data)}"
        )
    return np.frombuffer(data, dtype=dtype, count=count, offset=start).reshape(shape)


def _viewing_loader(original):
    def load_value(context, value_spec):
        if value_spec.WhichOneof("value") == "blobFileValue" and value_spec.type.WhichOneof("type") == (
            "tensorType"
        ):
            valuetype = milproto_load.proto_to_types(value_spec.type)
            if types.is_tensor(valuetype) and valuetype.get_primitive() in VIEW_DTYPES:
                blob = value_spec.blobFileValue
                path = os.path.join(context.weights_dir, blob.fileName.split("/")[-1])
                dtype = VIEW_DTYPES[valuetype.get_primitive()]
                return blob_view(path, blob.offset, dtype, valuetype.get_shape())
        return original(context, value_spec)

    return load_value


@contextmanager
def load_program_views():
    """While this is open, coremltools' milproto loader gives byte-aligned blob constants as views."""
    with _LOCK:
        original = milproto_load._load_value
        milproto_load._load_value = _viewing_loader(original)
        try:
            yield
        finally:
            milproto_load._load_value = original
