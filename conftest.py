"""Hypothesis profiles for the suite, chosen by HYPOTHESIS_PROFILE (default: ``ci`` under CI, else ``dev``).

- dev: fast feedback while editing.
- ci: derandomized (reproducible in CI), at least 50 examples per property.
- thorough: hundreds of examples per property, for a release or a nightly run.
"""

import os

from hypothesis import HealthCheck, settings

_common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("dev", max_examples=15, **_common)
settings.register_profile("ci", max_examples=50, derandomize=True, print_blob=True, **_common)
settings.register_profile("thorough", max_examples=400, print_blob=True, **_common)

# xdist workers each get an equal share of the cores: torch's default (all cores per process) makes
# the workers' thread pools fight over the same cores and runs the suite several times slower.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    import torch

    workers = int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))

# The program cache (verification.coreml.program_cache) keys on graphs, weights and versions, not on a
# converter a test monkeypatches: the suite runs with it off; its own tests turn it on in a tmp dir.
os.environ["ANE_VERIFY_CACHE"] = "off"

PROFILE = os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
settings.load_profile(PROFILE)


def pytest_report_header(config):
    return f"hypothesis profile: {PROFILE} (max_examples={settings.default.max_examples})"


# pytester (used by tests/plugin) must be enabled here: pytest refuses pytest_plugins in a conftest below
# the rootdir ("Defining 'pytest_plugins' in a non-top-level conftest is no longer supported").
pytest_plugins = ["pytester"]
