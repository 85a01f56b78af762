"""A content-addressed cache of converted programs: the same graph, weights, options and versions are
converted once.

The key is a SHA-256 over everything a conversion's result depends on:
- the traced (or exported) graph's text and the bytes of every tensor constant in it;
- the bytes, dtype and shape of every weight and buffer;
- the conversion options (inputs, outputs, states, precision, deployment target, compute units, pass
  pipeline);
- the versions of Python, torch, coremltools, numpy and ane-verify, and the source of this package's
  conversion code (its passes and op converters change what a graph converts to).
Anything that differs is a miss. A model changed at run time without changing its graph or weights
(a monkeypatched converter) is not seen: such a run must pass ``--no-cache`` (the suite runs with the
cache off unless a test turns it on).

Where: ``$ANE_VERIFY_CACHE`` (a directory, or ``off``), default ``~/.cache/ane-verify/programs``; at most
``$ANE_VERIFY_CACHE_MAX_MB`` (default 4096) MB, the least recently used entries evicted first. An entry
is a directory ``<key>/program.mlpackage`` written beside its final place and renamed into it, so a
killed run never leaves an entry that looks complete.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shutil
import tempfile
from pathlib import Path

import coremltools as ct
import numpy as np
import torch

ENV = "ANE_VERIFY_CACHE"
ENV_MAX_MB = "ANE_VERIFY_CACHE_MAX_MB"
DEFAULT_MAX_MB = 4096
PACKAGE = "program.mlpackage"
# torch.jit names the classes of a module traced again ___torch_mangle_<n>: the same graph, another name
_MANGLE = re.compile(r"___torch_mangle_\d+\.")
# what this process's conversions found: ("hit" | "miss", key); the run's report reads it
EVENTS: list[tuple[str, str]] = []


def cache_dir() -> Path | None:
    """The cache directory, or None when the cache is off."""
    value = os.environ.get(ENV, "")
    if value.lower() in ("off", "0", "no", "false"):
        return None
    return Path(value).expanduser() if value else Path.home() / ".cache" / "ane-verify" / "programs"


def _tensor_bytes(digest, name: str, tensor: torch.Tensor) -> None:
    tensor = tensor.detach().cpu().contiguous()
    digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
    if tensor.dtype == torch.bfloat16:  # numpy has no bfloat16: hash its bits
        tensor = tensor.view(torch.int16)
    digest.update(tensor.numpy().reshape(-1).view(np.uint8))  # the buffer itself: tobytes() copied it


def _graph_constants(graph) -> list[torch.Tensor]:
    """The tensor constants a traced graph captured (their values are not in the graph's text)."""
    found = []
    for node in graph.nodes():
        if node.kind() == "prim::Constant" and node.hasAttribute("value") and node.kindOf("value") == "t":
            found.append(node.t("value"))
        for block in node.blocks():
            found += _graph_constants(block)
    return found


def _conversion_source_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        ours = version("ane-verify")
    except PackageNotFoundError:
        ours = "not installed"
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "coremltools": ct.__version__,
        "numpy": np.__version__,
        "ane-verify": ours,
        "conversion source": _conversion_source_digest(),
    }


def program_key(source, options: dict) -> str:
    """The key of converting ``source`` (a ``torch.jit.ScriptModule`` from tracing, or a
    ``torch.export.ExportedProgram``) with ``options`` (every argument given to ``ct.convert``, as text)."""
    digest = hashlib.sha256()
    for name, value in sorted({**_versions(), **{f"option {k}": str(v) for k, v in options.items()}}.items()):
        digest.update(f"{name}={value}\n".encode())
    if isinstance(source, torch.export.ExportedProgram):
        digest.update(str(source.graph).encode())
        tensors = {**source.state_dict, **{f"constant {k}": v for k, v in source.constants.items()}}
    else:
        graph = source.inlined_graph
        digest.update(_MANGLE.sub("", str(graph)).encode())
        tensors = dict(source.state_dict(keep_vars=False))
        tensors.update({f"graph constant {i}": t for i, t in enumerate(_graph_constants(graph))})
    for name in sorted(tensors):
        value = tensors[name]
        if isinstance(value, torch.Tensor):
            _tensor_bytes(digest, name, value)
        else:
            digest.update(f"{name}|{value!r}".encode())
    return digest.hexdigest()


def lookup(key: str) -> Path | None:
    """The cached package of ``key``, or None (a miss, or the cache is off). Records the event."""
    root = cache_dir()
    if root is None:
        return None
    package = root / key / PACKAGE
    if (package / "Manifest.json").is_file():
        os.utime(root / key)  # most recently used
        EVENTS.append(("hit", key))
        return package
    EVENTS.append(("miss", key))
    return None


def store(key: str, mlmodel) -> None:
    """Keep ``mlmodel`` under ``key``; a failure to write the cache never fails the conversion."""
    root = cache_dir()
    if root is None:
        return
    try:
        root.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=f".{key[:16]}-", dir=root))
        try:
            mlmodel.save(str(partial / PACKAGE))
            os.replace(partial, root / key)
        except OSError:
            shutil.rmtree(partial, ignore_errors=True)
            return
        _evict(root, keep=key)
    except OSError:
        return


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _evict(root: Path, keep: str) -> None:
    limit = float(os.environ.get(ENV_MAX_MB, DEFAULT_MAX_MB)) * 1e6
    entries = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    entries.sort(key=lambda p: p.stat().st_mtime)
    sizes = {p: _size(p) for p in entries}
    total = sum(sizes.values())
    for entry in entries:
        if total <= limit:
            break
        if entry.name != keep:
            shutil.rmtree(entry, ignore_errors=True)
            total -= sizes[entry]


def summary(since: int = 0) -> dict:
    """What the conversions since ``len(EVENTS) == since`` found, for a report."""
    events = EVENTS[since:]
    root = cache_dir()
    return {
        "directory": str(root) if root is not None else None,
        "hits": sum(1 for kind, _ in events if kind == "hit"),
        "misses": sum(1 for kind, _ in events if kind == "miss"),
        "keys": [key[:16] for _, key in events],
    }
