"""Greedy generation driving a causal LM through a small interface: prefill, then one decode step a token.

``CausalLM`` is that interface. ``ane_models.optimize`` returns torch models that implement it
(``LlamaForCausalLMANE``); a converted program implements it by wrapping its prefill and decode
functions, so the same ``generate`` drives both and their token ids can be compared one for one.

The interface (all tensors torch, batch ``B`` = ``batch_size``):

- ``batch_size``, ``decoder_config.cache_capacity`` (cache slots), ``decoder_config.prefill_length``
  (most prompt tokens one prefill takes), ``decoder_config.max_position_embeddings``,
  ``decoder_config.eos_token_id`` / ``pad_token_id`` (the defaults of ``generate``).
- ``reset_cache(batch_size)``: an empty cache for ``batch_size`` rows (a program with a fixed batch
  raises for another one).
- ``prefill(input_ids (B, N), position, position_ids (B, N), attention_mask (B, L))`` -> logits (B, N, V):
  writes the N tokens' keys and values to cache slots ``position ..`` and returns their logits.
- ``decode_step(input_ids (B, 1), position, position_ids (B, 1), attention_mask (B, L))`` -> logits (B, V).

``attention_mask`` covers cache slots ``0 .. L-1`` (1 = a real token, 0 = padding), ``position_ids``
are rotary positions. ``generate`` writes the prompt from slot 0 and token t of the answer at slot
S + t; rows with left padding get rotary positions that count only their real tokens, as transformers'
``generate`` does, so a padded row produces what it would produce alone.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch


@runtime_checkable
class CausalLM(Protocol):
    decoder_config: Any
    batch_size: int

    def reset_cache(self, batch_size: int | None = None) -> None: ...

    def prefill(
        self,
        input_ids: torch.Tensor,
        position: int = 0,
        position_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor: ...

    def decode_step(
        self,
        input_ids: torch.Tensor,
        position: int,
        position_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor: ...


class _FromModel:
    def __repr__(self) -> str:
        return "<the model's>"


FROM_MODEL: Any = _FromModel()


@torch.no_grad()
def generate(
    model: CausalLM,
    input_ids: torch.Tensor,
    max_new_tokens: int,
    attention_mask: torch.Tensor | None = None,
    *,
    eos_token_id: Any = FROM_MODEL,
    pad_token_id: Any = FROM_MODEL,
) -> torch.Tensor:
    """Greedy decoding: the prompt and the new tokens, (B, S + new) int64, as transformers'
    ``generate(do_sample=False)`` returns them.

    ``attention_mask`` (B, S): 1 = real token, 0 = (left) padding; None means no padding. Generation
    stops early when every row has produced an end-of-sequence token (``eos_token_id``, an id or a
    list; None never stops; default the model's); rows that finished earlier continue with
    ``pad_token_id`` (default the model's, else the first eos id), as transformers does.
    Raises ``ValueError`` before running anything if the prompt is empty or longer than the prefill
    length, or if prompt and answer do not fit the cache or ``max_position_embeddings``.
    """
    config = model.decoder_config
    ids, mask = _checked_prompt(input_ids, attention_mask)
    if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens: expected a non-negative integer, got {max_new_tokens!r}")
    batch, length = ids.shape
    if length > config.prefill_length:
        raise ValueError(
            f"input_ids: expected a prompt of at most {config.prefill_length} tokens (the prefill "
            f"length), got {length}"
        )
    slots = length + max(max_new_tokens - 1, 0)  # the last new token is returned, never fed back
    if slots > config.cache_capacity:
        raise ValueError(
            f"generate: expected prompt + new tokens - 1 <= {config.cache_capacity} (the cache "
            f"capacity), got {length} + {max_new_tokens} - 1 = {slots}"
        )
    positions = (mask.cumsum(dim=1) - 1).clamp(min=0)  # rotary positions count real tokens only
    last_position = int(positions[:, -1].max()) + max(max_new_tokens - 1, 0)
    if last_position >= config.max_position_embeddings:
        raise ValueError(
            f"generate: expected rotary positions below max_position_embeddings "
            f"{config.max_position_embeddings}, got up to {last_position}"
        )
    eos = _eos_ids(config.eos_token_id if eos_token_id is FROM_MODEL else eos_token_id)
    pad = config.pad_token_id if pad_token_id is FROM_MODEL else pad_token_id
    if pad is None and eos:
        pad = eos[0]

    out = ids
    if max_new_tokens == 0:
        return out
    model.reset_cache(batch)
    logits = model.prefill(ids, 0, positions, mask)
    unfinished = torch.ones(batch, dtype=torch.bool)
    for step in range(max_new_tokens):
        next_ids = logits[:, -1].argmax(dim=-1) if logits.dim() == 3 else logits.argmax(dim=-1)
        if eos:
            next_ids = torch.where(unfinished, next_ids, torch.full_like(next_ids, pad))
            unfinished &= ~torch.isin(next_ids, torch.tensor(eos))
        out = torch.cat([out, next_ids[:, None]], dim=1)
        if step == max_new_tokens - 1 or not bool(unfinished.any()):
            break
        mask = torch.cat([mask, torch.ones(batch, 1, dtype=mask.dtype)], dim=1)
        positions = positions[:, -1:] + 1
        logits = model.decode_step(next_ids[:, None].to(ids.dtype), length + step, positions, mask)
    return out


def _checked_prompt(input_ids, attention_mask) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2:
        got = tuple(input_ids.shape) if isinstance(input_ids, torch.Tensor) else type(input_ids).__name__
        raise ValueError(f"input_ids: expected a (B, S) tensor of token ids, got {got}")
    if input_ids.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"input_ids: expected int32 or int64 token ids, got {input_ids.dtype}")
    if input_ids.shape[0] < 1 or input_ids.shape[1] < 1:
        raise ValueError(
            f"input_ids: expected at least one row and one token (an empty prompt has nothing "
            f"to continue), got shape {tuple(input_ids.shape)}"
        )
    ids = input_ids.long()
    if attention_mask is None:
        return ids, torch.ones_like(ids)
    if not isinstance(attention_mask, torch.Tensor) or tuple(attention_mask.shape) != tuple(ids.shape):
        got = tuple(attention_mask.shape) if isinstance(attention_mask, torch.Tensor) else attention_mask
        raise ValueError(f"attention_mask: expected shape {tuple(ids.shape)} (that of input_ids), got {got}")
    mask = attention_mask.long()
    if bool(((mask != 0) & (mask != 1)).any()):
        raise ValueError("attention_mask: expected only 0 (padding) and 1 (a real token)")
    if bool((mask.sum(dim=1) == 0).any()):
        rows = (mask.sum(dim=1) == 0).nonzero().flatten().tolist()
        raise ValueError(
            f"attention_mask: expected at least one real token per row, got none in rows {rows} "
            f"(an empty prompt)"
        )
    return ids, mask


def _eos_ids(eos) -> list[int]:
    if eos is None:
        return []
    return [int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos])]
