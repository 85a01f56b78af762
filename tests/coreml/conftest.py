"""Conversions shared across the Core ML tests (cached per process: conversion is the slow part)."""

import functools

import pytest
from tiny_models import ane_model, model_inputs


@pytest.fixture(scope="session")
def converted():
    """convert(...) results cached per (family, head, precision, exporter) within a test process."""
    from verification.coreml import convert

    @functools.cache
    def get(family: str, head: str, precision: str, exporter: str = "trace"):
        return convert(
            ane_model(family, head), model_inputs(family, head), precision=precision, exporter=exporter
        )

    return get
