"""Model tests run tiny models: one intra-op thread per process avoids thread-pool overhead (and
oversubscription when pytest-xdist runs a worker per core)."""

import torch

torch.set_num_threads(1)
