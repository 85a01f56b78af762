"""A stateful Llama package made the way Apple's coremltools documentation makes one for a KV cache
("Stateful Models", and Apple's "On Device Llama 3.1 with Core ML"): a wrapper around transformers'
``LlamaForCausalLM`` registers the key and value caches as buffers, a cache class writes each step's keys
and values into them by slice assignment, ``forward(inputIds, causalMask)`` returns the logits, and the
trace is converted with ``ct.StateType`` states ``keyCache``/``valueCache``, flexible lengths
(``ct.RangeDim``) and an additive fp16 causal mask whose key axis gives the position.

Written here for transformers 5 (the article's cache subclass targets 4.44); the package's names, layout
and calling convention are the recipe's, not ane-verify's. ``defect`` plants one fault in the package
(the reference checkpoint stays right): ``state_not_written`` drops the cache writes, ``mask_sign``
negates the mask inside the model, ``swapped_layers`` swaps the two layers' query weights.
"""

from __future__ import annotations

import numpy as np
import torch
import transformers
from transformers.cache_utils import Cache

CONTEXT = 32
CONFIG = dict(
    hidden_size=64,
    num_attention_heads=4,
    num_key_value_heads=2,
    num_hidden_layers=2,
    intermediate_size=128,
    vocab_size=200,
    max_position_embeddings=128,
)


class SliceUpdateCache(Cache):
    """Keys and values of every layer in two preallocated tensors, written in place at the new positions."""

    def __init__(self, shape, write: bool = True):
        super().__init__(layers=[])
        self.keys, self.values = torch.zeros(shape), torch.zeros(shape)
        self.past, self.write = 0, write

    def update(self, key_states, value_states, layer_idx, *args, **kwargs):
        begin, end = self.past, self.past + key_states.shape[-2]
        if self.write:
            self.keys[layer_idx, :, :, begin:end, :] = key_states
            self.values[layer_idx, :, :, begin:end, :] = value_states
        return self.keys[layer_idx, :, :, :end, :], self.values[layer_idx, :, :, :end, :]

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.past


class StatefulLlama(torch.nn.Module):
    def __init__(self, model, context: int, write: bool = True, mask_sign: float = 1.0):
        super().__init__()
        self.model, self.mask_sign = model, mask_sign
        c = model.config
        shape = (
            c.num_hidden_layers,
            1,
            c.num_key_value_heads,
            context,
            c.hidden_size // c.num_attention_heads,
        )
        self.cache = SliceUpdateCache(shape, write)
        self.register_buffer("keyCache", self.cache.keys)
        self.register_buffer("valueCache", self.cache.values)

    def forward(self, input_ids, causal_mask):
        self.cache.past = causal_mask.shape[-1] - input_ids.shape[-1]
        out = self.model(
            input_ids, attention_mask=self.mask_sign * causal_mask, past_key_values=self.cache, use_cache=True
        )
        return out.logits


def seeded_llama(seed: int = 11):
    torch.manual_seed(seed)
    model = transformers.LlamaForCausalLM(
        transformers.LlamaConfig(**CONFIG, attn_implementation="eager")
    ).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1 + 0.3 * torch.randn_like(p))
            elif "q_proj" in name or "k_proj" in name:
                p.mul_(3.0)
        model.lm_head.weight.mul_(40.0)  # peaked next-token distributions: few near-ties
    return model


def make(directory, defect: str | None = None):
    """Write ``directory/reference`` (the checkpoint) and ``directory/StatefulLlama.mlpackage``."""
    import copy

    import coremltools as ct

    # coremltools 9 has no converter for the aten::Int on a one-element shape tensor that transformers 5's
    # Llama traces to; ane-verify registers one, as a user of the recipe would have to
    import verification.coreml.torch_ops  # noqa: F401

    model = seeded_llama()
    model.save_pretrained(directory / "reference")
    converted = copy.deepcopy(model)
    if defect == "swapped_layers":
        layers = converted.model.layers
        with torch.no_grad():
            q0 = layers[0].self_attn.q_proj.weight.clone()
            layers[0].self_attn.q_proj.weight.copy_(layers[1].self_attn.q_proj.weight)
            layers[1].self_attn.q_proj.weight.copy_(q0)
    wrapper = StatefulLlama(
        converted,
        CONTEXT,
        write=defect != "state_not_written",
        mask_sign=-1.0 if defect == "mask_sign" else 1.0,
    ).eval()
    ids = torch.zeros((1, 2), dtype=torch.int32)
    mask = torch.zeros((1, 1, 2, 5), dtype=torch.float32)
    with torch.no_grad():
        traced = torch.jit.trace(wrapper, (ids, mask))
    query, keys = ct.RangeDim(1, CONTEXT), ct.RangeDim(1, CONTEXT)
    shape = tuple(wrapper.cache.keys.shape)
    mlmodel = ct.convert(
        traced,
        inputs=[
            ct.TensorType("inputIds", shape=(1, query), dtype=np.int32),
            ct.TensorType("causalMask", shape=(1, 1, query, keys), dtype=np.float16),
        ],
        outputs=[ct.TensorType("logits", dtype=np.float16)],
        states=[
            ct.StateType(wrapped_type=ct.TensorType(shape=shape, dtype=np.float16), name="keyCache"),
            ct.StateType(wrapped_type=ct.TensorType(shape=shape, dtype=np.float16), name="valueCache"),
        ],
        minimum_deployment_target=ct.target.iOS18,
        skip_model_load=True,
    )
    path = directory / "StatefulLlama.mlpackage"
    mlmodel.save(str(path))
    return path, directory / "reference"
