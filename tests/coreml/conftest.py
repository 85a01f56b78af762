"""Conversions shared across the Core ML tests (cached per process: conversion is the slow part)."""

import functools

import pytest
from tiny_models import model_under_test


@pytest.fixture(scope="session")
def converted():
    """convert(...) results cached per (model id, precision, exporter) within a test process."""
    from verification.coreml import convert

    @functools.cache
    def get(model_id: str, precision: str, exporter: str = "trace"):
        model, inputs = model_under_test(model_id)
        return convert(model, inputs, precision=precision, exporter=exporter)

    return get
