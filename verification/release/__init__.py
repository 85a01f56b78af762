"""The ``ane-verify`` release gate: the command line, the run pipeline, the model zoo, thresholds, reports."""
