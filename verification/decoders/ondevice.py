"""Placement and speed of a decoder package's functions on a Mac (macOS 14.4+ for the compute plan).

coremltools 9's compute plan covers the function a model was loaded with, so each function is loaded as
the selected one in turn (``MLModel(path, function_name=...)``) and its plan read; off macOS every report
is "not measured" with the reason, as for encoders (``verification.ondevice.placement``).
"""

from __future__ import annotations

from verification.ondevice.placement import compute_plan_records, measure_placement

from .conversion import FUNCTIONS


def _load_function(path: str, function_name: str, compute_units: str):
    import coremltools as ct

    return ct.models.MLModel(
        str(path), function_name=function_name, compute_units=getattr(ct.ComputeUnit, compute_units)
    )


def placement_per_function(
    path,
    *,
    compute_units: str = "CPU_AND_NE",
    device=None,
    functions=FUNCTIONS,
    load_function=_load_function,
    records_from=compute_plan_records,
    strict: bool = False,
) -> dict:
    """Function name -> ``PlacementReport`` of that function; ``load_function(path, name, units)`` and
    ``records_from(compiled_path, units, device, function_name=...)`` are injectable for tests."""
    reports = {}
    for name in functions:
        reports[name] = measure_placement(
            str(path),
            compute_units=compute_units,
            device=device,
            strict=strict,
            load_model=lambda p, units, name=name: load_function(p, name, units),
            records_from=lambda compiled, units, dev, name=name: records_from(
                compiled, units, dev, function_name=name
            ),
        )
    return reports
