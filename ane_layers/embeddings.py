"""Token embeddings that hand over to the (B, C, 1, S) layout."""

from __future__ import annotations

import torch
from torch import nn

from .layer_norm import LayerNormANE
from .layout import to_bc1s


class EmbeddingsANE(nn.Module):
    """Word + position (+ token type) embeddings, summed, then layer-normalized in (B, C, 1, S).

    The gathers run on (B, S) ids and give (B, S, C) (the lookup stays off the Neural Engine in any
    case); the one switch to (B, C, 1, S) happens here, before the layer norm, so every later layer
    works in the ANE layout. ``position_offset`` shifts position ids (RoBERTa starts at
    padding_idx + 1); ``position_ids`` and ``token_type_ids`` may be given explicitly.
    """

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
        seq_len = input_ids.shape[1]
        if position_ids is None:
            position_ids = torch.arange(self.position_offset, self.position_offset + seq_len,
                                        device=input_ids.device)[None, :]
        x = self.word_embeddings(input_ids) + self.position_embeddings(position_ids)
        if self.token_type_embeddings is not None:
            if token_type_ids is None:
                token_type_ids = torch.zeros_like(input_ids)
            x = x + self.token_type_embeddings(token_type_ids)
        # ANE principle 1: switch to (B, C, 1, S) once, right after the lookups.
        return self.norm(to_bc1s(x))
