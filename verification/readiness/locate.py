"""Where an op of a converted program came from: its place among the layer norms, and the torch module.

The layer norms mark the encoder's structure in any program, saved or in memory: before the first one
is the embedding, after the last one the head, and a post-LN encoder (one embedding layer norm, then two
per layer) has layer ``k`` between its norms ``2k`` and ``2k + 2``. The torch module is read from the
scope the converter recorded on the op (coremltools 9): the TorchScript module names and types
(``torch.jit.trace``) or the source line of the stack trace (``torch.export``). A saved ``.mlpackage``
keeps neither (coremltools does not serialize scopes), so it is None there.
"""

from __future__ import annotations

from pathlib import PurePath

from coremltools.converters.mil.mil.scope import ScopeSource


def layer_of(index: int, norm_positions: list[int], layers_inferred: bool) -> str | None:
    """The place of the top-level op ``index`` among the layer norms at ``norm_positions`` (sorted)."""
    if not norm_positions:
        return None
    if index <= norm_positions[0]:
        return "embeddings (up to the first layer norm)"
    if index > norm_positions[-1]:
        return "head (after the last layer norm)"
    before = sum(position < index for position in norm_positions)  # 1 .. len - 1
    if layers_inferred:
        return f"layer {(before - 1) // 2}"
    return f"between layer norms {before} and {before + 1} of {len(norm_positions)}"


def module_of(op) -> str | None:
    """``op``'s torch module path and class (traced), or its source line (exported); None if unknown."""
    scopes = getattr(op, "scopes", None) or {}
    names = list(scopes.get(ScopeSource.TORCHSCRIPT_MODULE_NAME) or [])
    kinds = list(scopes.get(ScopeSource.TORCHSCRIPT_MODULE_TYPE) or [])
    if names and kinds:
        # The last entry is the torch value (names) and the aten op (types); the rest are the submodules.
        path = ".".join(names[:-1]) or "(top-level forward)"
        owner = f"{kinds[-2]}, " if len(kinds) > 1 else ""
        return f"{path} ({owner}aten {kinds[-1]})"
    for trace in scopes.get(ScopeSource.EXIR_STACK_TRACE) or []:
        if trace:
            return _last_frame(str(trace))
    return None


def _last_frame(trace: str) -> str:
    """'ane_models/bert.py:179 in forward: return ...' from a Python stack trace's last frame."""
    lines = [line.strip() for line in trace.strip().splitlines() if line.strip()]
    frames = [i for i, line in enumerate(lines) if line.startswith('File "')]
    if not frames:
        return lines[-1] if lines else trace
    head = lines[frames[-1]]
    code = lines[frames[-1] + 1] if frames[-1] + 1 < len(lines) else ""
    try:
        path, rest = head[len('File "') :].split('", line ', 1)
        line, function = rest.split(", in ", 1)
    except ValueError:
        return head
    short = "/".join(PurePath(path).parts[-2:])
    return f"{short}:{line} in {function}" + (f": {code}" if code else "")
