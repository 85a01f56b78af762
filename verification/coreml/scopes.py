"""Which torch module each op of a converted program comes from: the layer to name when an op fails.

coremltools 9 carries the torch scope of every node into the ops it converts it to (``op.scopes``), through
its graph passes (a fused op keeps the scope of the ops it replaces):
- the trace exporter (TorchScript) gives the chain of called modules as attribute names and class names
  (``TORCHSCRIPT_MODULE_NAME`` / ``_TYPE``), the node's own name last; containers that are never called
  (``nn.ModuleList``) are missing from it, so the chain is resolved against the traced module's tree;
- torch.export gives the node's stack trace and its debug handle (``EXIR_STACK_TRACE`` /
  ``EXIR_DEBUG_HANDLE``). A stack trace does not tell two layers apart (the loop over layers has one line),
  so ``tag_export_nodes`` numbers the nodes before conversion and keeps each number's module path, taken
  from the node's ``nn_module_stack``.
Scopes live only in the in-memory program (the .mlpackage format does not store them), so
``verification.coreml.convert`` writes the op -> module map into the package's user-defined metadata
(``METADATA_KEY``), where ``op_modules`` finds it again after a save and a load.

A module path is the dotted name of ``model.named_modules()`` ("layers.0.self_attn.k_proj"); "" is the
top-level model itself (ops outside any submodule); an op absent from the map has no known origin.
"""

from __future__ import annotations

import json
import os

import coremltools as ct
from coremltools.converters.mil.mil import Program
from coremltools.converters.mil.mil.scope import ScopeSource

METADATA_KEY = "com.github.ane-verify.op_modules"
_PLACEHOLDER = "__COREML__::"  # coremltools' stand-in scope for ops made from graph inputs


def tag_export_nodes(exported) -> dict[int, str]:
    """Number every call node of a ``torch.export`` program (its ``debug_handle``, which coremltools
    carries into the ops it converts the node to); returns number -> module path of the node."""
    handles = {}
    for number, node in enumerate(exported.graph.nodes, start=1):
        if node.op != "call_function":
            continue
        stack = node.meta.get("nn_module_stack") or {}
        node.meta["debug_handle"] = number
        handles[number] = list(stack.values())[-1][0] if stack else ""
    return handles


class _ModuleTree:
    """Resolves a trace scope chain (name, class name) against the traced module's tree."""

    def __init__(self, model):
        self.model = model
        self._cache: dict = {}

    def _child(self, path: str, module, name: str, type_name: str):
        key = (path, name, type_name)
        if key not in self._cache:
            found = None
            for sub_path, sub in module.named_modules():
                if not sub_path or sub_path.rsplit(".", 1)[-1] != name or type(sub).__name__ != type_name:
                    continue
                if found is None or sub_path.count(".") < found[0].count("."):
                    found = (sub_path, sub)
            self._cache[key] = found
        return self._cache[key]

    def resolve(self, names: list, type_names: list) -> str | None:
        path, module = "", self.model
        for name, type_name in zip(names, type_names, strict=True):
            found = self._child(path, module, name, type_name)
            if found is None:
                return None
            path, module = f"{path}.{found[0]}" if path else found[0], found[1]
        return path


def _trace_path(scopes: dict, tree: _ModuleTree | None) -> str | None:
    names = scopes.get(ScopeSource.TORCHSCRIPT_MODULE_NAME)
    type_names = scopes.get(ScopeSource.TORCHSCRIPT_MODULE_TYPE)
    if not names or not type_names or any(_PLACEHOLDER in t for t in type_names):
        return None
    chain_names, chain_types = names[:-1], type_names[:-1]  # the last entry is the node itself
    if tree is not None:
        resolved = tree.resolve(chain_names, chain_types)
        if resolved is not None:
            return resolved
    return ".".join(chain_names)


def module_paths(program: Program, model=None, handles: dict | None = None) -> dict[str, str]:
    """op name -> module path for the non-const ops of an in-memory converted ``program`` (what
    ``ct.convert`` returns keeps it as ``mlmodel._mil_program``). ``model``: the traced module (resolves
    trace scopes to full paths; without it the chain of called modules is joined as is); ``handles``:
    ``tag_export_nodes``' table for a torch.export conversion."""
    tree = _ModuleTree(model) if model is not None else None
    paths = {}
    for function in program.functions.values():
        for op in function.operations:
            if op.op_type == "const":
                continue
            scopes = op.scopes
            handle = (scopes.get(ScopeSource.EXIR_DEBUG_HANDLE) or [None])[0]
            if handle is not None and handles is not None and handle in handles:
                paths[op.name] = handles[handle]
                continue
            path = _trace_path(scopes, tree)
            if path is not None:
                paths[op.name] = path
    return paths


def record(mlmodel: ct.models.MLModel, paths: dict[str, str]) -> None:
    """Store ``paths`` in ``mlmodel``'s user-defined metadata (saved with the package)."""
    mlmodel.user_defined_metadata[METADATA_KEY] = json.dumps(paths, separators=(",", ":"))


def function_key(function_name: str) -> str:
    """The metadata key of one function's map in a multifunction package (``multifunction`` writes it:
    the functions' op names collide, "op_120_cast_fp16" is in prefill and in decode)."""
    return f"{METADATA_KEY}.{function_name}"


def _from_spec(spec, function_name: str = "main") -> dict[str, str]:
    stored = spec.description.metadata.userDefined
    text = stored.get(function_key(function_name)) or stored.get(METADATA_KEY)
    if not text:
        return {}
    try:
        paths = json.loads(text)
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in paths.items()} if isinstance(paths, dict) else {}


def op_modules(source, function_name: str = "main") -> dict[str, str]:
    """op name -> module path for ``source``: an MLModel or .mlpackage path converted by
    ``verification.coreml.convert`` (read from its metadata; of ``function_name`` in a multifunction
    package), or an in-memory MIL ``Program`` (read from its scopes; trace chains are not resolved
    without the model). ``{}`` when nothing is known."""
    if isinstance(source, Program):
        return module_paths(source)
    if isinstance(source, ct.models.MLModel):
        found = _from_spec(source.get_spec(), function_name)
        program = getattr(source, "_mil_program", None)
        return found or (module_paths(program) if program is not None else {})
    if isinstance(source, (str, os.PathLike)):
        from coremltools.models.utils import load_spec

        return _from_spec(load_spec(str(source)), function_name)
    raise TypeError(
        f"op_modules: expected an MLModel, an .mlpackage path or a MIL Program, got {type(source).__name__}"
    )


def describe(path: str | None) -> str:
    """A module path as a report shows it."""
    if path is None:
        return "unknown layer"
    return path or "top level"
