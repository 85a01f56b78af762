"""Fixtures for the MIL executor tests."""

import coremltools as ct
import pytest
import torch
from converted_models import AneBlock, EmbeddingLookup, ane_block_example, bert, convert, token_example


@pytest.fixture(autouse=True)
def one_torch_thread():
    """These tests run many tiny ops; under pytest -n 2 on 2 cores a second OpenMP thread only adds
    barrier waits (measured on a loaded machine: a (2, 3, 4) softmax took 8 ms on 2 threads, 1 us on 1)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


TARGETS = {"default": None, "iOS16": ct.target.iOS16}


@pytest.fixture(scope="session")
def saved_models(tmp_path_factory):
    """name -> (path to the saved .mlpackage, torch reference output, numpy feed)."""
    root = tmp_path_factory.mktemp("mil_models")
    cases = {}
    torch.manual_seed(0)
    block = AneBlock().eval()
    example = ane_block_example()
    with torch.no_grad():
        reference = block(**example).numpy()
    feed = {name: t.numpy() for name, t in example.items()}
    for precision in ("fp32", "fp16"):
        for target_name, target in TARGETS.items():
            cases[f"ane_block_{precision}_{target_name}"] = (
                block,
                example,
                precision,
                target,
                reference,
                feed,
            )
    lookup = EmbeddingLookup().eval()
    ids, _ = token_example(40)
    with torch.no_grad():
        reference = lookup(ids).numpy()
    for precision in ("fp32", "fp16"):
        cases[f"embedding_{precision}"] = (
            lookup,
            {"ids": ids},
            precision,
            None,
            reference,
            {"ids": ids.numpy()},
        )
    ids, mask = token_example(60)
    for mask_name, value in (("finite_mask", -1e4), ("finfo_min_mask", torch.finfo(torch.float32).min)):
        model = bert(value)
        with torch.no_grad():
            reference = model(ids, mask).numpy()
        for precision in ("fp32", "fp16"):
            example_bert = {"ids": ids, "attention_mask": mask}
            feed_bert = {"ids": ids.numpy(), "attention_mask": mask.numpy()}
            cases[f"bert_{mask_name}_{precision}"] = (
                model,
                example_bert,
                precision,
                None,
                reference,
                feed_bert,
            )
    saved = {}
    for name, (model, example_inputs, precision, target, reference, feed) in cases.items():
        path = root / f"{name}.mlpackage"
        convert(model, example_inputs, precision, target).save(str(path))
        saved[name] = (path, reference, feed)
    return saved
