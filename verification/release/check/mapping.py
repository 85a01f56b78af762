"""How a package's inputs, outputs, functions and states correspond to the reference model's.

Matched by the names real packages use (``input_ids``/``inputIds``, ``attention_mask``, ``causalMask``,
``keyCache``...), by the only output when there is one, and by shape for the layout; whatever cannot be
told for certain is refused (``MappingError``: exit 2, before anything runs) and taken from ``--map``.
Never a best guess: the report lists every correspondence and how it was made.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .interface import Feature, Flexible, PackageInterface
from .map_file import MapFile

ENCODER_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
DECODER_INPUTS = ("input_ids", "attention_mask", "causal_mask", "position", "position_ids")
STATE_ROLES = ("key_cache", "value_cache")
# normalized name (lower case, letters and digits only) -> role
_SYNONYMS = {
    "inputids": "input_ids",
    "tokens": "input_ids",
    "tokenids": "input_ids",
    "attentionmask": "attention_mask",
    "mask": "attention_mask",
    "paddingmask": "attention_mask",
    "tokentypeids": "token_type_ids",
    "segmentids": "token_type_ids",
    "causalmask": "causal_mask",
    "position": "position",
    "cacheposition": "position",
    "positionids": "position_ids",
    "keycache": "key_cache",
    "kcache": "key_cache",
    "valuecache": "value_cache",
    "vcache": "value_cache",
}
# reference output fields by normalized package output name
_OUTPUT_NAMES = {
    "logits": "logits",
    "lasthiddenstate": "last_hidden_state",
    "hiddenstates": "last_hidden_state",
    "pooleroutput": "pooler_output",
    "startlogits": "start_logits",
    "endlogits": "end_logits",
}
MASK_FORMS = ("keep", "additive")  # 1 = attend / 0 = masked, or 0 = attend / large negative = masked


class MappingError(ValueError):
    """A name, layout, function or state that cannot be matched for certain (the message says which)."""


def normalized(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def role_by_name(name: str) -> str | None:
    """The role a name says, also under the ``input_`` prefix coremltools adds to traced argument names
    (Apple's ane_transformers tutorial package takes ``input_input_ids`` and ``input_attention_mask``)."""
    key = normalized(name)
    role = _SYNONYMS.get(key)
    if role is None and key.startswith("input"):
        role = _SYNONYMS.get(key[len("input") :])
    return role


@dataclass(frozen=True)
class InputMatch:
    name: str
    role: str
    form: str | None  # masks: keep | additive
    how: str


@dataclass(frozen=True)
class OutputMatch:
    name: str
    reference: str  # the reference model's output field
    layout: str | None  # a key of LAYOUTS; None: told by the first call's output (no declared shape)
    how: str


@dataclass
class Mapping:
    kind: str  # encoder | decoder
    inputs: dict = field(default_factory=dict)  # function name -> [InputMatch]
    outputs: list = field(default_factory=list)  # [OutputMatch] (decoders: the logits)
    functions: dict = field(default_factory=dict)  # role (main | prefill | decode) -> function name
    states: dict = field(default_factory=dict)  # role -> state name
    notes: list = field(default_factory=list)

    def role_of(self, function: str) -> dict:
        """{role: InputMatch} of one function's inputs."""
        return {m.role: m for m in self.inputs[function]}

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "functions": dict(self.functions),
            "inputs": {
                f: [{"name": m.name, "role": m.role, "form": m.form, "how": m.how} for m in matches]
                for f, matches in self.inputs.items()
            },
            "outputs": [vars(m) for m in self.outputs],
            "states": dict(self.states),
            "notes": list(self.notes),
        }


# Package layouts of a reference output, by the reference's axes: B batch, S sequence, C channels.
LAYOUTS = {
    "bsc": "(B, S, C), as transformers",
    "bc1s": "(B, C, 1, S), the ANE layout",
    "bcs": "(B, C, S)",
    "bc": "(B, C), as transformers",
    "bs": "(B, S), as transformers",
    "b11s": "(B, 1, 1, S)",
}


def layout_shapes(reference_axes: str, b: int, s: int, c: int | None) -> dict:
    """The package shape each layout gives a reference output with axes ``bsc``, ``bc`` or ``bs``."""
    if reference_axes == "bsc":
        return {"bsc": (b, s, c), "bc1s": (b, c, 1, s), "bcs": (b, c, s)}
    if reference_axes == "bs":
        return {"bs": (b, s), "b11s": (b, 1, 1, s)}
    return {"bc": (b, c)}


def layout_by_shape(declared: tuple, shapes: dict, described: str, field_name: str, where: str) -> str:
    """The one layout of ``shapes`` (``layout_shapes``) the declared or measured shape fits, or exit 2."""
    fitting = [name for name, shape in shapes.items() if _admits(tuple(declared), shape)]
    if not fitting:
        listed = ", ".join(f"{k} {v}" for k, v in shapes.items())
        raise MappingError(
            f"{where}: output {described} does not have the shape of the reference's {field_name} in any "
            f"layout it could be in: {listed}"
        )
    if len(fitting) > 1:
        raise MappingError(
            f"{where}: output {described} fits layouts {fitting} of the reference's {field_name} (its "
            f"sequence and channel sizes are equal): give --map FILE with [outputs] "
            f'{described.split()[0]} = {{ reference = "{field_name}", layout = "..." }}'
        )
    return fitting[0]


def _admits(declared: tuple, shape: tuple) -> bool:
    if len(declared) != len(shape):
        return False
    return all(
        d.admits(x) if isinstance(d, Flexible) else d == x for d, x in zip(declared, shape, strict=True)
    )


def match_inputs(function, roles: tuple, map_file: MapFile, where: str) -> list:
    matches, seen = [], {}
    for feature in function.inputs:
        given = map_file.inputs.get(feature.name)
        if given is not None:
            role, form, how = given.role, given.form, "--map"
        else:
            role, form, how = role_by_name(feature.name), None, "by name"
        if role not in roles and how == "--map":
            raise MappingError(
                f"--map {map_file.path}: input {feature.name!r} = {role!r}: this package's function takes "
                f"{list(roles)} (the reference is "
                f"{'a causal LM' if 'causal_mask' in roles else 'an encoder'})"
            )
        if role not in roles:
            raise MappingError(
                f"{where}: input {feature}: cannot tell what it is; expected one of {list(roles)} by "
                f"name (input_ids, attention_mask, ...), or give --map FILE with [inputs] "
                f'{feature.name} = "ROLE"'
            )
        if role in seen:
            raise MappingError(
                f"{where}: inputs {seen[role]!r} and {feature.name!r} are both {role}; give --map FILE "
                "to say which is which"
            )
        seen[role] = feature.name
        matches.append(InputMatch(feature.name, role, _mask_form(feature, role, form, where), how))
    if "input_ids" not in seen:
        raise MappingError(
            f"{where}: no input is the token ids; found {[str(f) for f in function.inputs]}, expected one "
            "named input_ids (or inputIds, tokens), or give --map FILE"
        )
    return matches


def _mask_form(feature: Feature, role: str, form: str | None, where: str) -> str | None:
    if role not in ("attention_mask", "causal_mask"):
        return None
    if form is not None:
        return form
    if feature.dtype.startswith("int"):
        return "keep"  # an integer mask holds 0/1: additive masks are float
    if role == "causal_mask":
        return "additive"  # the convention of Apple's stateful-model recipe: 0 or -inf, in the model dtype
    raise MappingError(
        f"{where}: input {feature} is a float mask: 0/1 or additive cannot be told from the spec; give "
        f'--map FILE with [inputs] {feature.name} = {{ role = "{role}", form = "keep" }} (or "additive")'
    )


def match_outputs(
    function, reference: dict, batch: int, seq: int, map_file: MapFile, where: str, *, only=None
) -> list:
    """``reference``: the reference model's outputs, field -> (axes, channels) (``bsc``/``bc``/``bs``).
    ``only``: the fields to match (decoders: logits); other package outputs are then left out."""
    candidates = {k: v for k, v in reference.items() if only is None or k in only}
    matches = []
    outputs = list(function.outputs)
    for feature in outputs:
        given = map_file.outputs.get(feature.name)
        if given is not None:
            field_name, layout, how = given.reference, given.layout, "--map"
        else:
            field_name, how = _OUTPUT_NAMES.get(normalized(feature.name)), "by name"
            layout = None
            if field_name is None:  # a generated name (var_1414): the one reference output of its shape
                fitting = [
                    k
                    for k, (axes, channels) in candidates.items()
                    if any(
                        _admits(feature.shape, shape)
                        for shape in layout_shapes(axes, batch, seq, channels).values()
                    )
                ]
                if len(fitting) == 1:
                    field_name, how = fitting[0], "the only reference output of its shape"
                elif len(fitting) > 1:
                    raise MappingError(
                        f"{where}: output {feature}: its name says nothing and its shape fits the "
                        "reference's "
                        f"{fitting}; give --map FILE with [outputs] {feature.name} = "
                        f'{{ reference = "FIELD" }}'
                    )
        if field_name is None or field_name not in candidates:
            if only is not None and given is None:
                continue
            raise MappingError(
                f"{where}: output {feature}: cannot tell which reference output it is; expected one of "
                f"{list(candidates)} by name, or give --map FILE with [outputs] {feature.name} = "
                f'{{ reference = "FIELD", layout = "bsc" }}'
            )
        axes, channels = candidates[field_name]
        shapes = layout_shapes(axes, batch, seq, channels)
        if layout is not None:
            if layout not in shapes:
                raise MappingError(
                    f"--map: output {feature.name!r} layout {layout!r}: expected one of {list(shapes)} for "
                    f"the reference's {field_name}"
                )
            if not _admits(feature.shape, shapes[layout]):
                raise MappingError(
                    f"{where}: output {feature}: --map says layout {layout} {shapes[layout]}, the package "
                    "declares another shape"
                )
        elif feature.shape == ():  # flexible-shape packages declare no output shape
            how = f"{how}; layout from the first call's output shape"
        else:
            layout, how = (
                layout_by_shape(feature.shape, shapes, str(feature), field_name, where),
                f"{how}; layout by shape",
            )
        if any(m.reference == field_name for m in matches):
            raise MappingError(
                f"{where}: outputs {[m.name for m in matches if m.reference == field_name] + [feature.name]} "
                f"would all be the reference's {field_name}; give --map FILE to say which is"
            )
        matches.append(OutputMatch(feature.name, field_name, layout, how))
    if not matches:
        raise MappingError(
            f"{where}: no output matches the reference's {list(candidates)}; found "
            f"{[str(f) for f in outputs]}; give --map FILE"
        )
    return matches


def check_map_names(interface: PackageInterface, functions: list, map_file: MapFile) -> None:
    """Every name ``--map`` gives is one the package has: a map written for another package is refused."""
    for name in map_file.functions.values():
        interface.function(name)  # raises, naming the functions the package has
    kinds = {
        "inputs": {f.name for n in functions for f in interface.function(n).inputs},
        "outputs": {f.name for n in functions for f in interface.function(n).outputs},
        "states": {f.name for n in functions for f in interface.function(n).states},
    }
    given = {"inputs": map_file.inputs, "outputs": map_file.outputs, "states": map_file.states.values()}
    for kind, names in given.items():
        for name in names:
            if name not in kinds[kind]:
                raise MappingError(
                    f"--map {map_file.path}: [{kind}] names {name!r}; {interface.path} has "
                    f"{sorted(kinds[kind]) or f'no {kind}'}"
                )


def match_states(interface: PackageInterface, functions: list, map_file: MapFile) -> dict:
    declared = {s.name for name in functions for s in interface.function(name).states}
    states = {}
    for role, name in map_file.states.items():
        if name not in declared:
            raise MappingError(
                f"{interface.path}: --map names state {name!r} as the {role}; the package declares "
                f"{sorted(declared) or 'no state'}"
            )
        states[role] = name
    for name in sorted(declared):
        role = role_by_name(name)
        if role in STATE_ROLES and role not in states:
            states[role] = name
    return states


def choose_size(declared, wanted: int | None, default: int, what: str, where: str) -> int:
    """A fixed dimension's size, or ``wanted`` (else ``default``, capped by the range) for a flexible one."""
    if isinstance(declared, int):
        if wanted is not None and wanted != declared:
            raise MappingError(f"{where}: {what} {wanted} given; the package takes exactly {declared}")
        return declared
    size = wanted if wanted is not None else min(default, declared.upper or default)
    size = max(size, declared.lower)
    if not declared.admits(size):
        raise MappingError(f"{where}: {what} {size}: the package takes {declared}")
    return size
