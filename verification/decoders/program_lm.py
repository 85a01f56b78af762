"""A converted decoder package as an ``ane_models.generation.CausalLM``, so ``ane_models.generate`` drives
it exactly as it drives the torch model, on either backend (Core ML on macOS, the MIL executor anywhere).

The prefill function has a fixed length N: a shorter prompt is padded on the right. The padding's keys
land in slots after the prompt, which the causal mask hides and the decode steps overwrite before any
query can see them; the padding's logits are dropped. The state form keeps the cache in the session's
state; the io form carries the two caches from one call's outputs to the next call's inputs.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from verification.coreml import StatefulSession, require_functions

from .conversion import FUNCTIONS, IO_CACHE_INPUTS, IO_CACHE_OUTPUTS


class ProgramCausalLM:
    """``prefill`` / ``decode_step`` / ``reset_cache`` over the package at ``path``.

    ``decoder_config``: the torch model's (``lm.decoder_config``); its prefill length becomes the
    program's. ``backend`` / ``mode`` / ``compute_units``: as for ``StatefulSession``. ``observe``
    (optional) is called as ``observe(function_name, inputs, outputs)`` after every call.
    """

    def __init__(
        self,
        path,
        decoder_config,
        *,
        backend="auto",
        mode=None,
        compute_units=None,
        observe=None,
        coreml_loader=None,
    ):
        require_functions(path, FUNCTIONS)
        self.session = StatefulSession(
            path, backend=backend, mode=mode, compute_units=compute_units, coreml_loader=coreml_loader
        )
        spec = self.session.spec.description
        prefill = next(f for f in spec.functions if f.name == "prefill")
        shapes = {i.name: tuple(int(d) for d in i.type.multiArrayType.shape) for i in prefill.input}
        self.prefill_length = shapes["input_ids"][1]
        self.capacity = shapes["attention_mask"][1]
        if self.capacity != decoder_config.cache_capacity:
            raise ValueError(
                f"decoder_config: expected cache_capacity {self.capacity} (the program's), got "
                f"{decoder_config.cache_capacity}"
            )
        self.cache_form = "io" if IO_CACHE_INPUTS[0] in shapes else "state"
        self._cache_shapes = [shapes[name] for name in IO_CACHE_INPUTS] if self.cache_form == "io" else []
        self.decoder_config = dataclasses.replace(decoder_config, prefill_length=self.prefill_length)
        self.batch_size = 1
        self.observe = observe
        self.state, self.caches = None, None
        self.reset_cache()

    def reset_cache(self, batch_size: int | None = None) -> None:
        if batch_size not in (None, 1):
            raise ValueError(f"batch_size: expected 1 (the converted program's), got {batch_size}")
        if self.cache_form == "state":
            self.state = self.session.make_state("decode")
        else:
            dtype = np.float16 if self._io_fp16() else np.float32
            self.caches = [np.zeros(shape, dtype) for shape in self._cache_shapes]

    def _io_fp16(self) -> bool:
        spec = self.session.spec.description
        prefill = next(f for f in spec.functions if f.name == "prefill")
        inputs = {i.name: i for i in prefill.input}
        return inputs[IO_CACHE_INPUTS[0]].type.multiArrayType.dataType == 65552  # FLOAT16

    def _call(self, name: str, ids, position: int, position_ids, mask) -> np.ndarray:
        n = ids.shape[1]
        if position < 0 or position + n > self.capacity:
            raise ValueError(
                f"{name}: expected slots {position}..{position + n - 1} inside the cache capacity of "
                f"{self.capacity} (slots 0..{self.capacity - 1}); a decode past the capacity is refused, "
                "the cache never wraps around"
            )
        full_mask = np.ones((1, self.capacity), np.int32)
        if mask is not None:
            mask = np.asarray(mask, np.int32).reshape(1, -1)
            if mask.shape[1] > self.capacity:
                raise ValueError(
                    f"attention_mask: expected at most {self.capacity} slots, got {mask.shape[1]}"
                )
            full_mask[:, : mask.shape[1]] = mask
        feed = {
            "input_ids": ids.astype(np.int32),
            "position": np.array([position], np.int32),
            "position_ids": position_ids.astype(np.int32),
            "attention_mask": full_mask,
        }
        if self.cache_form == "io":
            feed.update(dict(zip(IO_CACHE_INPUTS, self.caches, strict=True)))
            outputs = self.session.predict(feed, function_name=name)
            self.caches = [outputs[key] for key in IO_CACHE_OUTPUTS]
        else:
            outputs = self.session.predict(feed, function_name=name, state=self.state)
        if self.observe is not None:
            self.observe(name, feed, outputs)
        return outputs["logits"]

    def prefill(self, input_ids, position=0, position_ids=None, attention_mask=None) -> torch.Tensor:
        ids = _ids(input_ids)
        s, n = ids.shape[1], self.prefill_length
        if s > n:
            raise ValueError(
                f"input_ids: expected at most {n} tokens (the program's prefill length), got {s}"
            )
        positions = _positions(position_ids, position, s)
        padded_ids = np.concatenate([ids, np.zeros((1, n - s), ids.dtype)], axis=1)
        padded_positions = np.concatenate([positions, np.repeat(positions[:, -1:], n - s, axis=1)], axis=1)
        if position + n > self.capacity:
            raise ValueError(
                f"prefill: the program writes {n} slots from {position}; expected position <= "
                f"{self.capacity - n} for its cache capacity of {self.capacity}"
            )
        logits = self._call("prefill", padded_ids, int(position), padded_positions, _array(attention_mask))
        return torch.from_numpy(np.asarray(logits[:, :s], np.float32))

    def decode_step(self, input_ids, position, position_ids=None, attention_mask=None) -> torch.Tensor:
        ids = _ids(input_ids)
        if ids.shape[1] != 1:
            raise ValueError(f"decode_step: expected one token, shape (1, 1), got {ids.shape}")
        positions = _positions(position_ids, position, 1)
        logits = self._call("decode", ids, int(position), positions, _array(attention_mask))
        return torch.from_numpy(np.asarray(logits[:, -1], np.float32))


def _array(x):
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x


def _ids(input_ids) -> np.ndarray:
    ids = np.asarray(_array(input_ids))
    if ids.ndim != 2 or ids.shape[0] != 1:
        raise ValueError(f"input_ids: expected shape (1, N) (the program's batch is 1), got {ids.shape}")
    return ids.astype(np.int64)


def _positions(position_ids, position: int, n: int) -> np.ndarray:
    if position_ids is None:
        return (np.arange(n) + int(position))[None]
    positions = np.asarray(_array(position_ids)).reshape(1, -1)
    if positions.shape[1] != n:
        raise ValueError(f"position_ids: expected shape (1, {n}), got {positions.shape}")
    return positions
