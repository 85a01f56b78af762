"""What a package says about itself: its functions, and each one's inputs, outputs and states, read from
the model description in its spec (``Model.proto``'s ``FeatureDescription``s). Nothing is run.

A dimension is an ``int`` when fixed; a flexible one (``ct.RangeDim``) is a ``Flexible(lower, upper)``,
upper ``None`` when unbounded; enumerated shapes keep the first (default) one and list the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# ArrayFeatureType.ArrayDataType
_DTYPES = {65552: "fp16", 65568: "fp32", 65600: "fp64", 131104: "int32", 131080: "int8"}


class PackageInterfaceError(ValueError):
    """The package declares something ``check`` cannot feed or read (the message names it)."""


@dataclass(frozen=True)
class Flexible:
    lower: int
    upper: int | None

    def __str__(self) -> str:
        return f"{self.lower}..{'' if self.upper is None else self.upper}"

    def admits(self, size: int) -> bool:
        return size >= self.lower and (self.upper is None or size <= self.upper)


@dataclass(frozen=True)
class Feature:
    """One input, output or state: its name, shape (ints and ``Flexible``) and dtype."""

    name: str
    shape: tuple
    dtype: str
    enumerated: tuple = ()  # other admissible shapes of an input declared with enumerated shapes

    @property
    def fixed(self) -> bool:
        return all(isinstance(d, int) for d in self.shape)

    def __str__(self) -> str:
        return f"{self.name} ({', '.join(map(str, self.shape))}) {self.dtype}"


@dataclass(frozen=True)
class Function:
    name: str
    inputs: tuple
    outputs: tuple
    states: tuple = ()

    def input(self, name: str) -> Feature:
        return next(f for f in self.inputs if f.name == name)

    def output(self, name: str) -> Feature:
        return next(f for f in self.outputs if f.name == name)


@dataclass(frozen=True)
class PackageInterface:
    path: str
    functions: tuple
    default_function: str
    spec_version: int = 0
    notes: tuple = field(default_factory=tuple)

    def function(self, name: str) -> Function:
        for function in self.functions:
            if function.name == name:
                return function
        raise PackageInterfaceError(
            f"{self.path}: no function {name!r}; it has {[f.name for f in self.functions]}"
        )

    @property
    def stateful(self) -> bool:
        return any(f.states for f in self.functions)


def _array_feature(feature, where: str, *, state: bool = False) -> Feature:
    kind = feature.type.WhichOneof("Type")
    if state:
        if kind != "stateType":
            raise PackageInterfaceError(f"{where}: state {feature.name!r} is a {kind}, expected a state")
        array = feature.type.stateType.arrayType
    elif kind != "multiArrayType":
        raise PackageInterfaceError(
            f"{where}: {feature.name!r} is a {kind} feature; check feeds and reads multi-arrays only "
            "(token ids, masks, logits, hidden states)"
        )
    else:
        array = feature.type.multiArrayType
    dtype = _DTYPES.get(array.dataType, f"dtype {array.dataType}")
    shape: list = [int(d) for d in array.shape]
    enumerated: tuple = ()
    flexibility = array.WhichOneof("ShapeFlexibility")
    if flexibility == "shapeRange":
        ranges = array.shapeRange.sizeRanges
        shape = [
            int(r.lowerBound)
            if r.lowerBound == r.upperBound
            else Flexible(int(r.lowerBound), None if r.upperBound < 0 else int(r.upperBound))
            for r in ranges
        ]
    elif flexibility == "enumeratedShapes":
        shapes = [tuple(int(d) for d in s.shape) for s in array.enumeratedShapes.shapes]
        if shapes:
            shape, enumerated = list(shapes[0]), tuple(shapes[1:])
    return Feature(feature.name, tuple(shape), dtype, enumerated)


def read_interface(spec, path: str) -> PackageInterface:
    """The interface of a Model spec (``coremltools.utils.load_spec``); ``path`` names it in errors."""
    kind = spec.WhichOneof("Type")
    if kind != "mlProgram":
        raise PackageInterfaceError(
            f"{path} is a {kind!r} model, not an ML Program; check judges ML Programs (.mlpackage, "
            "convert_to='mlprogram')"
        )
    description = spec.description
    where = f"{path}"
    if description.functions:
        functions = tuple(
            Function(
                f.name,
                tuple(_array_feature(x, f"{where} function {f.name!r}") for x in f.input),
                tuple(_array_feature(x, f"{where} function {f.name!r}") for x in f.output),
                tuple(_array_feature(x, f"{where} function {f.name!r}", state=True) for x in f.state),
            )
            for f in description.functions
        )
        default = description.defaultFunctionName or functions[0].name
    else:
        functions = (
            Function(
                "main",
                tuple(_array_feature(x, where) for x in description.input),
                tuple(_array_feature(x, where) for x in description.output),
                tuple(_array_feature(x, where, state=True) for x in description.state),
            ),
        )
        default = "main"
    return PackageInterface(path, functions, default, int(spec.specificationVersion))


def load_interface(path) -> PackageInterface:
    """Read ``path``'s spec (coremltools' reader) and return its interface."""
    import coremltools as ct

    try:
        spec = ct.utils.load_spec(str(path))
    except Exception as error:  # coremltools raises many types for unreadable packages
        raise PackageInterfaceError(
            f"{path}: coremltools could not read the package ({type(error).__name__}: {error})"
        ) from None
    return read_interface(spec, str(path))
