"""Decoder tests run tiny models: one intra-op thread per process avoids thread-pool overhead (and
oversubscription when pytest-xdist runs a worker per core). Their helper modules import by name."""

import os
import sys

import torch

torch.set_num_threads(1)
sys.path.insert(0, os.path.dirname(__file__))
