"""Core AI tests (marker ``coreai``: skipped with the reason when the optional extra is missing).

They reuse the Core ML tests' tiny models (``tests/coreml/tiny_models.py``), so that directory goes on
the import path here too."""

import functools
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "coreml"))


@pytest.fixture(scope="session")
def coreai_converted():
    """verification.coreai.convert(...) results cached per (model id, precision) within a test process."""
    from coreai_cases import model_under_test

    from verification.coreai import convert

    @functools.cache
    def get(model_id: str, precision: str):
        model, inputs = model_under_test(model_id)
        return convert(model, inputs, precision=precision)

    return get
