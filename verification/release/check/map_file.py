"""``check --map FILE``: what a package's names mean, where they cannot be told from the names.

    [functions]            # decoders: which function prefills and which decodes (may be the same)
    prefill = "main"
    decode = "main"

    [inputs]               # package input -> role, and a mask's form
    inputIds = "input_ids"
    causalMask = { role = "causal_mask", form = "additive" }

    [outputs]              # package output -> the reference's output field and the package's layout
    var_1414 = { reference = "logits", layout = "bc" }

    [states]               # role -> package state
    key_cache = "keyCache"
    value_cache = "valueCache"

    context = 64           # decoders: the KV cache's slots, where the package's shapes do not say

Read before anything heavy is imported: a file that is not this is refused in one line.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

ROLES = ("input_ids", "attention_mask", "token_type_ids", "causal_mask", "position", "position_ids")
FORMS = ("keep", "additive")
LAYOUT_NAMES = ("bsc", "bc1s", "bcs", "bc", "bs", "b11s")
FUNCTION_ROLES = ("main", "prefill", "decode")
STATE_ROLES = ("key_cache", "value_cache")
SECTIONS = ("functions", "inputs", "outputs", "states", "context")


class MapFileError(ValueError):
    """A ``--map`` file that cannot be used (the message names the file and the entry)."""


@dataclass(frozen=True)
class MappedInput:
    role: str
    form: str | None = None


@dataclass(frozen=True)
class MappedOutput:
    reference: str
    layout: str | None = None


@dataclass
class MapFile:
    path: str | None = None
    functions: dict = field(default_factory=dict)
    inputs: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)
    states: dict = field(default_factory=dict)
    context: int | None = None


def _one_of(value, allowed, where: str) -> str:
    if value not in allowed:
        raise MapFileError(f"{where}: expected one of {list(allowed)}, got {value!r}")
    return value


def _table(data: dict, name: str, where: str) -> dict:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise MapFileError(f"{where} [{name}]: expected a table, got {type(value).__name__}")
    return value


def _input(name: str, value, where: str) -> MappedInput:
    at = f"{where} [inputs] {name}"
    if isinstance(value, str):
        return MappedInput(_one_of(value, ROLES, at))
    if isinstance(value, dict) and set(value) <= {"role", "form"} and "role" in value:
        form = value.get("form")
        return MappedInput(
            _one_of(value["role"], ROLES, at), None if form is None else _one_of(form, FORMS, at)
        )
    raise MapFileError(
        f'{at}: expected "ROLE" or {{ role = "ROLE", form = "keep" | "additive" }}, got {value!r}'
    )


def _output(name: str, value, where: str) -> MappedOutput:
    at = f"{where} [outputs] {name}"
    if isinstance(value, str):
        return MappedOutput(value)
    if isinstance(value, dict) and set(value) <= {"reference", "layout"} and "reference" in value:
        layout = value.get("layout")
        return MappedOutput(
            str(value["reference"]), None if layout is None else _one_of(layout, LAYOUT_NAMES, at)
        )
    raise MapFileError(f'{at}: expected "FIELD" or {{ reference = "FIELD", layout = "bsc" }}, got {value!r}')


def read_map(path: str | None) -> MapFile:
    """The parsed ``--map`` file (an empty map for None)."""
    if path is None:
        return MapFile()
    where = f"--map {path}"
    file = Path(path)
    if not file.is_file():
        raise MapFileError(f"{where}: no such file (expected a TOML file)")
    try:
        data = tomllib.loads(file.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise MapFileError(f"{where}: not readable TOML ({error})") from None
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise MapFileError(f"{where}: unknown entries {unknown}; expected {list(SECTIONS)}")
    functions = {
        _one_of(role, FUNCTION_ROLES, f"{where} [functions]"): str(name)
        for role, name in _table(data, "functions", where).items()
    }
    states = {
        _one_of(role, STATE_ROLES, f"{where} [states]"): str(name)
        for role, name in _table(data, "states", where).items()
    }
    context = data.get("context")
    if context is not None and (not isinstance(context, int) or isinstance(context, bool) or context < 1):
        raise MapFileError(f"{where} context: expected a positive number of slots, got {context!r}")
    return MapFile(
        str(path),
        functions,
        {k: _input(k, v, where) for k, v in _table(data, "inputs", where).items()},
        {k: _output(k, v, where) for k, v in _table(data, "outputs", where).items()},
        states,
        context,
    )
