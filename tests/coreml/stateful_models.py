"""Tiny stateful torch modules for the Core ML state tests: a cache written in place at a runtime position.

``TinyCacheModel`` keeps a (1, C, 1, capacity) buffer; ``forward(x, position)`` projects N new columns,
writes them at slots ``position .. position + N - 1`` and returns an attention-like read of the whole
cache (a softmax over slots, later slots hidden by a causal mask), so every output depends on what
earlier calls wrote. ``TinyCacheModelIO`` is the same computation with the cache as an input and an
output (the other cache form). The ``torch.export`` variant reads the position with ``.item()`` and
bounds it with ``torch._check``: export refuses a slice at a tensor-valued position.
"""

from __future__ import annotations

import torch
from torch import nn

CHANNELS, CAPACITY = 8, 16


class _Readout(nn.Module):
    def __init__(self, channels: int, capacity: int):
        super().__init__()
        self.proj = nn.Conv2d(channels, channels, 1)
        self.query = nn.Conv2d(channels, channels, 1)
        self.capacity = capacity

    def project(self, x):
        return self.proj(x)

    def read(self, cache, x, position):
        n = x.shape[3]
        q = self.query(x)  # (1, C, 1, N)
        scores = torch.einsum("bchk,bchq->bkhq", cache, q)  # (1, capacity, 1, N)
        slots = torch.arange(self.capacity)[None, :, None, None]
        queries = (torch.arange(n) + position)[None, None, None, :]
        scores = scores + (slots > queries).to(scores.dtype) * -1e4  # finite causal mask
        return torch.einsum("bkhq,bchk->bchq", scores.softmax(dim=1), cache)


class TinyCacheModel(nn.Module):
    """Cache as a registered buffer written in place: converts to Core ML state."""

    def __init__(self, channels: int = CHANNELS, capacity: int = CAPACITY, export_friendly: bool = False):
        super().__init__()
        self.layer = _Readout(channels, capacity)
        self.register_buffer("cache", torch.zeros(1, channels, 1, capacity), persistent=False)
        self.export_friendly = export_friendly
        self.fp16_cache = False  # reference only: hold the cache in fp16, as Core ML state does

    def forward(self, x, position):
        n = x.shape[3]
        if self.export_friendly:
            p = position.item()
            torch._check(p >= 0)
            torch._check(p + n <= self.layer.capacity)
        else:
            p = position
        self.cache[:, :, :, p : p + n] = self.layer.project(x)
        if self.fp16_cache:
            self.cache.copy_(self.cache.half().float())
        return self.layer.read(self.cache, x, position)


class TinyCacheModelIO(nn.Module):
    """The same model with the cache passed in and returned (no state: any deployment target)."""

    def __init__(self, stateful: TinyCacheModel):
        super().__init__()
        self.layer = stateful.layer

    def forward(self, x, position, cache):
        n = x.shape[3]
        # A write as arithmetic over one-hot slots: static shapes, no scatter (the ANE has none).
        slots = torch.arange(self.layer.capacity)[None, :]
        one_hot = (slots == (torch.arange(n) + position)[:, None]).to(x.dtype)  # (N, capacity)
        cache = cache * (1 - one_hot.sum(dim=0)) + torch.matmul(self.layer.project(x), one_hot)
        return self.layer.read(cache, x, position), cache


def seeded(seed: int = 0, **kwargs) -> TinyCacheModel:
    torch.manual_seed(seed)
    model = TinyCacheModel(**kwargs).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(-0.5, 0.5)
    return model
