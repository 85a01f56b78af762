"""Fixtures for the MIL executor tests."""

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    """These tests run many tiny ops; under pytest -n 2 on 2 cores a second OpenMP thread only adds
    barrier waits (measured on a loaded machine: a (2, 3, 4) softmax took 8 ms on 2 threads, 1 us on 1)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
