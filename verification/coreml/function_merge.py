"""Single-function packages merged into one multifunction package, a weight at a time.

coremltools' ``save_multifunction`` rebuilds every function's pymil program with all its weights in
memory, deduplicates them there and serializes the whole program again: for a decoder's prefill and
decode functions that is both functions' weights, twice, at once (4 GB above the process for a 1-layer
Qwen3-0.6B slice of 0.7 GB, the peak of its conversion). ``merge_functions`` does the same at the level of
the files: it copies each function's program description into one Model spec (renamed, as coremltools
does), and streams each function's weight blobs into one weight file, a blob once when functions hold
the same values (type, shape and bytes), rewriting the offsets the programs name. Memory: one blob at a time.

The weight file is MIL's blob storage, version 2 (``verification/mil/weight_file.py`` describes it).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import coremltools as ct

from verification.mil.weight_file import HEADER, RECORD, SENTINEL, VERSION, mapping

ALIGNMENT = 64  # records and data start at multiples of 64 bytes
WEIGHT_FILE = "@model_path/weights/weight.bin"
IOS18_SPECIFICATION = 9  # the first with multifunction programs


def _aligned(offset: int) -> int:
    return -(-offset // ALIGNMENT) * ALIGNMENT


def _blob_values(message):
    """Every ``Value`` held in a weight file in a protobuf message, however deep (op attributes, inline
    arguments, nested blocks)."""
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            items = value.values() if field.message_type.fields_by_name["value"].message_type else ()
        elif field.is_repeated:
            items = value
        else:
            items = (value,)
        for item in items:
            if item.DESCRIPTOR.name == "Value" and item.HasField("blobFileValue"):
                yield item
            else:
                yield from _blob_values(item)


class _WeightWriter:
    """Writes blobs to one weight file, each distinct (type, padding, bytes) once."""

    def __init__(self, path: Path):
        self.file = open(path, "wb")  # noqa: SIM115 (closed by close())
        self.file.write(b"\0" * ALIGNMENT)  # the header, written last (it holds the count)
        self.offsets: dict[tuple, int] = {}
        self.count = 0

    def copy(self, source: str, offset: int, value_type: bytes) -> int:
        """Copy the blob whose record is at ``offset`` in ``source`` for a value of ``value_type`` (its
        serialized type: shared only between values of one type, as coremltools shares them); the offset
        of its record here."""
        data = mapping(source)
        sentinel, dtype, size, start, padding = RECORD.unpack_from(data, offset)
        if sentinel != SENTINEL or start + size > len(data):
            raise ValueError(f"{source}: no whole blob at offset {offset}")
        payload = memoryview(data)[start : start + size]
        key = (value_type, dtype, padding, size, hashlib.blake2b(payload, digest_size=16).digest())
        if key not in self.offsets:
            record = _aligned(self.file.tell())
            self.file.write(b"\0" * (record - self.file.tell()))
            body = record + ALIGNMENT
            self.file.write(RECORD.pack(SENTINEL, dtype, size, body, padding).ljust(ALIGNMENT, b"\0"))
            self.file.write(payload)
            self.offsets[key] = record
            self.count += 1
        payload.release()
        return self.offsets[key]

    def close(self) -> None:
        self.file.write(b"\0" * (_aligned(self.file.tell()) - self.file.tell()))
        self.file.seek(0)
        self.file.write(HEADER.pack(self.count, VERSION))
        self.file.close()


def _function_description(spec, name: str):
    """The part's interface as a named function (coremltools' ``get_function_spec`` for a single-function
    model)."""
    description = spec.description
    return ct.proto.Model_pb2.FunctionDescription(
        name=name,
        input=description.input,
        output=description.output,
        state=description.state,
        predictedFeatureName=description.predictedFeatureName,
        predictedProbabilitiesName=description.predictedProbabilitiesName,
    )


def merge_functions(parts: Mapping[str, str | os.PathLike], path: Path, default: str) -> None:
    """Write the package ``path`` (which must not exist) with one function per ``parts`` entry (function
    name -> a saved single-function ML Program package, its function ``main``), weights shared by content,
    ``default`` the default function."""
    models = {name: ct.models.MLModel(str(part), skip_model_load=True) for name, part in parts.items()}
    specs = {name: model.get_spec() for name, model in models.items()}
    combined = ct.proto.Model_pb2.Model()
    combined.specificationVersion = max(
        IOS18_SPECIFICATION, *(s.specificationVersion for s in specs.values())
    )
    weights = path.parent / f".{path.name}-weights"
    weights.mkdir()
    try:
        writer = _WeightWriter(weights / "weight.bin")
        try:
            for name, spec in specs.items():
                source = models[name].weights_dir
                function = combined.mlProgram.functions[name]
                function.CopyFrom(spec.mlProgram.functions["main"])
                for value in _blob_values(function):
                    blob = value.blobFileValue
                    where = os.path.join(source, blob.fileName.split("/")[-1])
                    blob.offset = writer.copy(where, blob.offset, value.type.SerializeToString())
                    blob.fileName = WEIGHT_FILE
                combined.description.functions.append(_function_description(spec, name))
                if not combined.mlProgram.version:
                    combined.mlProgram.version = spec.mlProgram.version
        finally:
            writer.close()
        combined.description.defaultFunctionName = default
        model = ct.models.MLModel(combined, weights_dir=str(weights), skip_model_load=True)
        model.save(str(path))
    finally:
        shutil.rmtree(weights, ignore_errors=True)
