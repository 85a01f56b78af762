"""Token embeddings that hand over to the (B, C, 1, S) layout."""

from __future__ import annotations

import torch
from torch import nn

from .checks import is_tracing
from .layer_norm import LayerNormANE
from .layout import to_bc1s


class EmbeddingsANE(nn.Module):
    """Word + position (+ token type) embeddings, summed, then layer-normalized in (B, C, 1, S).

    The gathers run on (B, S) ids and give (B, S, C) (the lookup stays off the Neural Engine in any
    case); the one switch to (B, C, 1, S) happens here, before the layer norm, so every later layer
    works in the ANE layout. ``position_offset`` shifts position ids (RoBERTa starts at
    padding_idx + 1); ``position_ids`` and ``token_type_ids`` may be given explicitly.

    Inputs are checked: ids of rank 2 and integer dtype, S + position_offset <= max_positions (shape
    checks run while tracing too), and, when not tracing, every id inside its table
    (``ValueError`` naming the offending value and the valid range).
    """

    row_gather = False  # set by ane_models.set_layout (True in its coreai layout); same values either way

    def __init__(self, vocab_size: int, embed_dim: int, max_positions: int, *, type_vocab_size: int = 0,
                 pad_token_id: int | None = None, eps: float = 1e-12, position_offset: int = 0):
        super().__init__()
        self.vocab_size = vocab_size
        self.max_positions = max_positions
        self.position_offset = position_offset
        self.word_embeddings = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_token_id)
        self.position_embeddings = nn.Embedding(max_positions, embed_dim)
        self.token_type_embeddings = nn.Embedding(type_vocab_size, embed_dim) if type_vocab_size else None
        self.norm = LayerNormANE(embed_dim, eps=eps)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None) -> torch.Tensor:
        self.check_inputs(input_ids, token_type_ids, position_ids)
        seq_len = input_ids.shape[1]
        if position_ids is None:
            position_ids = torch.arange(self.position_offset, self.position_offset + seq_len,
                                        device=input_ids.device)[None, :]
        x = self.lookup(self.word_embeddings, input_ids) + self.lookup(self.position_embeddings, position_ids)
        if self.token_type_embeddings is not None:
            if token_type_ids is None:
                token_type_ids = torch.zeros_like(input_ids)
            x = x + self.lookup(self.token_type_embeddings, token_type_ids)
        # ANE principle 1: switch to (B, C, 1, S) once, right after the lookups.
        return self.norm(to_bc1s(x))

    def lookup(self, table: nn.Embedding, ids: torch.Tensor) -> torch.Tensor:
        """``table(ids)``: (B, S) ids -> (B, S, C). With ``row_gather`` the same rows come from a gather
        along axis 0 with the ids broadcast to (B * S, C): converters lower ``nn.Embedding`` to a gather
        whose (B, S, 1) index tensor has a last axis of 1, which Core AI's Neural Engine rules forbid."""
        if not self.row_gather:
            return table(ids)
        weight = table.weight
        index = ids.flatten()[None, :].expand(weight.shape[1], -1).transpose(0, 1)  # (B * S, C)
        rows = torch.gather(weight, 0, index.long())
        return rows.reshape(ids.shape[0], ids.shape[1], weight.shape[1])

    def check_inputs(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                     position_ids: torch.Tensor | None = None) -> None:
        """Raise on ids of the wrong rank, dtype or shape, or (eager only) outside their tables."""
        _check_ids(input_ids, "input_ids", self.vocab_size)
        seq_len = input_ids.shape[1]
        if seq_len + self.position_offset > self.max_positions:
            offset = f" + position offset {self.position_offset}" if self.position_offset else ""
            raise ValueError(
                f"input_ids: sequence length {seq_len}{offset} exceeds the {self.max_positions} position "
                f"embeddings (at most {self.max_positions - self.position_offset} tokens)"
            )
        if position_ids is not None:
            _check_ids(position_ids, "position_ids", self.max_positions, like=input_ids, broadcast_batch=True)
        if token_type_ids is not None:
            if self.token_type_embeddings is None:
                raise ValueError("token_type_ids: this embedding has no token type table (type_vocab_size 0)")
            _check_ids(token_type_ids, "token_type_ids", self.token_type_embeddings.num_embeddings,
                       like=input_ids)


def _check_ids(ids, name: str, table_size: int, *, like: torch.Tensor | None = None,
               broadcast_batch: bool = False) -> None:
    """Rank 2 integer ids (of ``like``'s shape, batch 1 allowed if ``broadcast_batch``) in [0, table_size)."""
    if not isinstance(ids, torch.Tensor):
        raise TypeError(f"{name}: expected an integer torch.Tensor of shape (B, S), got {type(ids).__name__}")
    if ids.dtype == torch.bool or ids.is_floating_point() or ids.is_complex():
        raise TypeError(f"{name}: expected an integer dtype (int32 or int64), got {ids.dtype}")
    if ids.dim() != 2:
        raise ValueError(f"{name}: expected shape (B, S) (rank 2), got {tuple(ids.shape)}")
    if like is not None:
        batch_ok = ids.shape[0] == like.shape[0] or (broadcast_batch and ids.shape[0] == 1)
        if not batch_ok or ids.shape[1] != like.shape[1]:
            raise ValueError(f"{name}: expected shape {tuple(like.shape)} (that of input_ids), "
                             f"got {tuple(ids.shape)}")
    if is_tracing() or ids.numel() == 0:
        return
    low, high = int(ids.min()), int(ids.max())
    if low < 0 or high >= table_size:
        bad = low if low < 0 else high
        raise ValueError(f"{name}: expected ids in [0, {table_size}), got {bad} "
                         f"(range of the batch [{low}, {high}])")
