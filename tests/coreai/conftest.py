"""The Core AI tests: skipped with the reason when the optional ``coreai`` extra is not installed.

They reuse the Core ML tests' tiny models (``tests/coreml/tiny_models.py``), so that directory goes on
the import path here too."""

import functools
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "coreml"))

from verification.coreai.extra import missing_reason  # noqa: E402

REASON = missing_reason()


def pytest_collection_modifyitems(config, items):
    if REASON is None:
        return
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents and "needs_no_coreai" not in item.keywords:
            item.add_marker(pytest.mark.skip(reason=REASON))


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
