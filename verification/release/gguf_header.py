"""A GGUF file's header, metadata and tensor table, read with ``struct`` alone (no numpy, no torch), so
that ``ane-verify run --weights FILE.gguf`` refuses a file that is not GGUF, truncated or of another
architecture in a fraction of a second, before transformers is imported to load it.

Layout (GGUF v2 and v3, little-endian): ``b"GGUF"``, version (u32), tensor count (u64), metadata count
(u64), the metadata (key string, value type u32, value), one entry per tensor (name, rank u32, dims
u64 each, ggml type u32, offset u64), then the tensor data from the next multiple of
``general.alignment`` (default 32). Strings are a u64 length and UTF-8 bytes.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path

MAGIC = b"GGUF"
VERSIONS = (2, 3)  # what transformers' GGUF loader (gguf-py) reads
DEFAULT_ALIGNMENT = 32
# metadata value type -> struct format (8: string, 9: array are read separately)
SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
STRING, ARRAY = 8, 9
# ggml tensor type -> (values per block, bytes per block); gguf.constants.GGML_QUANT_SIZES (a test keeps
# them equal). A type not listed here is not size-checked.
BLOCKS = {
    0: (1, 4),  # F32
    1: (1, 2),  # F16
    2: (32, 18),  # Q4_0
    3: (32, 20),  # Q4_1
    6: (32, 22),  # Q5_0
    7: (32, 24),  # Q5_1
    8: (32, 34),  # Q8_0
    9: (32, 40),  # Q8_1
    10: (256, 84),  # Q2_K
    11: (256, 110),  # Q3_K
    12: (256, 144),  # Q4_K
    13: (256, 176),  # Q5_K
    14: (256, 210),  # Q6_K
    15: (256, 292),  # Q8_K
    24: (1, 1),  # I8
    25: (1, 2),  # I16
    26: (1, 4),  # I32
    27: (1, 8),  # I64
    28: (1, 8),  # F64
    30: (1, 2),  # BF16
}


class GGUFError(ValueError):
    """Not a GGUF file this tool can read (the message says what is wrong, without the path)."""


@dataclass
class GGUFHeader:
    version: int
    tensor_count: int
    metadata: dict = field(default_factory=dict)  # scalar and string values; arrays as their length
    data_bytes: int = 0  # bytes the tensor table says the data takes (types in BLOCKS)

    @property
    def architecture(self) -> str | None:
        value = self.metadata.get("general.architecture")
        return value if isinstance(value, str) else None

    @property
    def context_length(self) -> int | None:
        value = self.metadata.get(f"{self.architecture}.context_length")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def tokenizer(self) -> bool:
        return "tokenizer.ggml.model" in self.metadata and "tokenizer.ggml.tokens" in self.metadata


class _Reader:
    def __init__(self, buffer, size: int):
        self.buffer, self.size, self.at = buffer, size, 0

    def take(self, fmt: str, what: str):
        width = struct.calcsize("<" + fmt)
        if self.at + width > self.size:
            raise GGUFError(f"truncated: the file ends at byte {self.size} inside the {what}")
        (value,) = struct.unpack_from("<" + fmt, self.buffer, self.at)
        self.at += width
        return value

    def skip(self, count: int, what: str) -> None:
        if count < 0 or self.at + count > self.size:
            raise GGUFError(f"truncated: the file ends at byte {self.size} inside the {what}")
        self.at += count

    def string(self, what: str) -> str:
        length = self.take("Q", what)
        start = self.at
        self.skip(length, what)
        try:
            return bytes(self.buffer[start : self.at]).decode("utf-8")
        except UnicodeDecodeError:
            raise GGUFError(f"the {what} at byte {start} is not UTF-8") from None

    def value(self, kind: int, key: str):
        if kind in SCALARS:
            return self.take(SCALARS[kind], f"value of {key}")
        if kind == STRING:
            return self.string(f"value of {key}")
        if kind == ARRAY:
            item, count = self.take("I", f"array {key}"), self.take("Q", f"array {key}")
            if item in SCALARS:
                self.skip(count * struct.calcsize("<" + SCALARS[item]), f"array {key}")
            elif item == STRING:
                for _ in range(count):
                    self.skip(self.take("Q", f"array {key}"), f"array {key}")
            else:
                raise GGUFError(f"metadata {key}: unsupported array item type {item}")
            return count
        raise GGUFError(f"metadata {key}: unknown value type {kind}")


def read_header(path: str | Path) -> GGUFHeader:
    """The header, metadata and tensor table of ``path``, checked against the file's length: a file
    shorter than its own tables and tensor data is refused as truncated."""
    path = Path(path)
    size = path.stat().st_size
    if size < 24:
        raise GGUFError(f"truncated: {size} bytes, shorter than a GGUF header (24)")
    with path.open("rb") as stream, mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) as buffer:
        reader = _Reader(buffer, size)
        if bytes(buffer[:4]) != MAGIC:
            raise GGUFError(f"not a GGUF file (starts with {bytes(buffer[:4])!r}, expected {MAGIC!r})")
        reader.at = 4
        version = reader.take("I", "header")
        if version not in VERSIONS:
            raise GGUFError(f"GGUF version {version}; expected one of {', '.join(map(str, VERSIONS))}")
        tensors, entries = reader.take("Q", "header"), reader.take("Q", "header")
        # every tensor entry and metadata pair takes more than 8 bytes: counts the file cannot hold
        if tensors * 8 > size or entries * 8 > size:
            raise GGUFError(
                f"truncated or corrupt: its header counts {tensors} tensors and {entries} metadata entries, "
                f"more than {size} bytes can hold"
            )
        header = GGUFHeader(version, tensors)
        for _ in range(entries):
            key = reader.string("metadata key")
            header.metadata[key] = reader.value(reader.take("I", f"type of {key}"), key)
        end = 0
        for _ in range(tensors):
            name = reader.string("tensor table")
            rank = reader.take("I", f"tensor {name}")
            if rank > 8:
                raise GGUFError(f"corrupt tensor table: tensor {name} has rank {rank}")
            dims = [reader.take("Q", f"tensor {name}") for _ in range(rank)]
            kind, offset = reader.take("I", f"tensor {name}"), reader.take("Q", f"tensor {name}")
            count = 1
            for dim in dims:
                count *= dim
            per_block, block_bytes = BLOCKS.get(kind, (1, 0))
            end = max(end, offset + -(-count // per_block) * block_bytes)
        alignment = header.metadata.get("general.alignment", DEFAULT_ALIGNMENT)
        if not isinstance(alignment, int) or alignment < 1:
            raise GGUFError(f"corrupt metadata: general.alignment {alignment!r}")
        start = -(-reader.at // alignment) * alignment
        header.data_bytes = end
        if start + end > size:
            raise GGUFError(
                f"truncated: {size} bytes, but its tensor table needs {start + end} (data from byte {start})"
            )
        return header
