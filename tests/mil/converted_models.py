"""Small torch modules for the end-to-end tests and their Core ML conversions (saved .mlpackage paths).

- ``AneBlock``: an ANE-style encoder block in (B, C, 1, S): 1x1 convs, split-einsum attention with one
  einsum pair per head, softmax over the key axis, BC1S layer norms, GELU FFN; float input and mask.
- ``EmbeddingLookup``: nn.Embedding on int32 ids, output moved to (B, C, 1, S).
- ``bert``: transformers BertModel from a tiny config (eager attention), fed a prepared 4D additive mask
  (transformers 5 returns a 4D mask as is, which avoids the ``new_ones`` op coremltools cannot convert).
"""

from __future__ import annotations

import warnings

import coremltools as ct
import numpy as np
import torch
from torch import nn

SEQ = 8


class LayerNormBC1S(nn.Module):
    def __init__(self, channels, eps=1e-7):
        super().__init__()
        self.weight = nn.Parameter(1.0 + 0.1 * torch.randn(channels))
        self.bias = nn.Parameter(0.1 * torch.randn(channels))
        self.eps = eps

    def forward(self, x):
        centered = x - x.mean(dim=1, keepdim=True)
        scale = torch.rsqrt((centered * centered).mean(dim=1, keepdim=True) + self.eps)
        return centered * scale * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class AneBlock(nn.Module):
    def __init__(self, dim=32, heads=4, hidden=64):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.out = (nn.Conv2d(dim, dim, 1) for _ in range(4))
        self.norm1, self.norm2 = LayerNormBC1S(dim), LayerNormBC1S(dim)
        self.ffn_in, self.ffn_out = nn.Conv2d(dim, hidden, 1), nn.Conv2d(hidden, dim, 1)

    def forward(self, x, mask):
        head_dim = x.shape[1] // self.heads
        queries = self.q(x).split(head_dim, dim=1)
        keys = self.k(x).transpose(1, 3).split(head_dim, dim=3)
        values = self.v(x).split(head_dim, dim=1)
        bias = ((1.0 - mask) * -1e4)[:, :, None, None]
        heads = []
        for q, k, v in zip(queries, keys, values, strict=True):
            weights = torch.einsum("bchq,bkhc->bkhq", q, k) * head_dim**-0.5 + bias
            heads.append(torch.einsum("bkhq,bchk->bchq", weights.softmax(dim=1), v))
        x = self.norm1(x + self.out(torch.cat(heads, dim=1)))
        return self.norm2(x + self.ffn_out(nn.functional.gelu(self.ffn_in(x))))


class EmbeddingLookup(nn.Module):
    def __init__(self, vocab=40, dim=16):
        super().__init__()
        self.table = nn.Embedding(vocab, dim)

    def forward(self, ids):
        return self.table(ids).transpose(1, 2).unsqueeze(2)


class BertWithPreparedMask(nn.Module):
    """BertModel with explicit token types and positions; ``mask_value`` fills padded key positions."""

    def __init__(self, model, mask_value):
        super().__init__()
        import transformers

        if int(transformers.__version__.split(".")[0]) < 5:
            # transformers 4.x (4.46 to 4.57): BertModel rejects a 4D mask (get_extended_attention_mask
            # takes 2D or 3D and builds the additive mask with finfo.min itself); transformers 5 takes a
            # prepared 4D mask as is. Make 4.x take it as is too, so mask_value is what the program sees.
            model.get_extended_attention_mask = lambda mask, *args, **kwargs: mask
        self.model = model
        self.mask_value = mask_value

    def forward(self, ids, attention_mask):
        additive = (1.0 - attention_mask[:, None, None, :].float()) * self.mask_value
        positions = torch.arange(ids.shape[1])[None]
        out = self.model(
            input_ids=ids,
            attention_mask=additive,
            token_type_ids=torch.zeros_like(ids),
            position_ids=positions,
            return_dict=False,
        )
        return out[0]


def bert(mask_value):
    import transformers

    config = transformers.BertConfig(
        vocab_size=60,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=32,
        attn_implementation="eager",
    )  # layer_norm_eps keeps BERT's default 1e-12
    torch.manual_seed(3)
    return BertWithPreparedMask(transformers.BertModel(config).eval(), mask_value).eval()


def convert(model, example: dict, precision: str, target=None):
    """Trace and convert ``model`` on ``example`` (name -> tensor) to an ML Program MLModel."""
    tensors = tuple(example.values())
    inputs = [
        ct.TensorType(
            name=name, shape=tuple(t.shape), dtype=np.int32 if not t.is_floating_point() else np.float32
        )
        for name, t in example.items()
    ]
    kwargs = {} if target is None else {"minimum_deployment_target": target}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model.eval(), tensors)
        return ct.convert(
            traced,
            inputs=inputs,
            convert_to="mlprogram",
            compute_precision=ct.precision.FLOAT16 if precision == "fp16" else ct.precision.FLOAT32,
            **kwargs,
        )


def ane_block_example():
    torch.manual_seed(0)
    x = torch.randn(1, 32, 1, SEQ)
    mask = torch.ones(1, SEQ)
    mask[0, -2:] = 0
    return {"x": x, "mask": mask}


def token_example(vocab):
    torch.manual_seed(1)
    ids = torch.randint(0, vocab, (1, SEQ), dtype=torch.int32)
    mask = torch.ones(1, SEQ, dtype=torch.int32)
    mask[0, -3:] = 0
    return ids, mask
