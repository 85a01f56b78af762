"""``check`` of a Core AI ``.aimodel``: the same matching and reference run as a Core ML package's, with the
parts that read the program done by Core AI.

- The interface comes from the function descriptors Core AI's runtime gives once the asset is loaded
  (names, shapes, dtypes of every input, output and state), so the matching rules of ``mapping`` apply
  unchanged.
- Parity is computed by Core AI's runtime: the interpreter bundled in ``coreai-core`` off macOS 27, the OS
  runtime on it (``verification.coreai.runtime``).
- Core AI's Neural Engine authoring rules are read from the asset's own program
  (``verification.coreai.readiness``), as ``run --target coreai`` does for the programs it converts.
- What needs a MIL program is recorded as not measured, with the reason: the per-op fp16 hazard finder
  (it runs MIL ops one at a time) and Core AI's NaN/Inf validator (it runs the torch ExportedProgram,
  which a foreign asset does not carry).
"""

from __future__ import annotations

from .interface import Feature, Flexible, Function, PackageInterface, PackageInterfaceError

_DTYPES = {"int32": "int32", "int64": "int64", "float16": "fp16", "float32": "fp32"}
HAZARDS_UNMEASURED = (
    "a Core AI asset is not a MIL program: the per-op fp16 hazard finder runs MIL ops one at a time "
    "(the asset's outputs are compared above, and the mask-sentinel and fp32 rules read its constants)"
)
VALIDATOR_UNMEASURED = (
    "Core AI's NaN/Inf validator runs the torch ExportedProgram a conversion started from; a saved asset "
    "does not carry it"
)


def _feature(name: str, shape: tuple, dtype: str) -> Feature:
    # an open dimension (None) is a flexible one of unknown bounds, as ct.RangeDim(1, None)
    dims = tuple(Flexible(1, None) if d is None else int(d) for d in shape)
    return Feature(name, dims, _DTYPES.get(dtype, dtype))


def load_interface(path) -> PackageInterface:
    """The interface of a saved ``.aimodel``, from its loaded functions' descriptors."""
    from ...coreai import AssetError, CoreAIRuntimeError, function_descriptors

    try:
        functions = function_descriptors(path)
    except (AssetError, CoreAIRuntimeError) as error:
        raise PackageInterfaceError(str(error)) from None
    except Exception as error:  # the runtime's own errors for an asset it cannot load
        raise PackageInterfaceError(
            f"{path}: Core AI could not load the asset ({type(error).__name__}: {error})"
        ) from None
    if not functions:
        raise PackageInterfaceError(f"{path}: the Core AI asset declares no function")
    read = tuple(
        Function(
            name,
            tuple(_feature(*f) for f in parts["inputs"]),
            tuple(_feature(*f) for f in parts["outputs"]),
            tuple(_feature(*f) for f in parts["states"]),
        )
        for name, parts in functions.items()
    )
    default = "main" if "main" in functions else read[0].name
    return PackageInterface(str(path), read, default)


def precision_of(path) -> str:
    """fp16 when any op of the asset's program computes in fp16."""
    from ...coreai import open_asset
    from ...coreai.readiness import view

    program = view(open_asset(path).program)
    return "fp16" if any(t.dtype == "f16" for op in program.ops for t in op.results) else "fp32"


def run_stages(stage, planned, reference, options, judge, adopt, details) -> tuple[dict, dict]:
    """Parity (stage 1), the hazards not measured (2), Core AI's rules (3); the config and source for the
    report. ``adopt`` takes the rules' ``Check``s into the report."""
    from ...coreai import Session, describe, open_asset
    from ...coreai.readiness import readiness_checks
    from ..model_zoo import inputs_source
    from .encoder_check import HAZARD_CHECKS, feeds, output_parity

    function = planned.function
    feed = feeds(function, planned.inputs, planned.by_role)
    runtime = describe()

    def run_both():
        with Session(options.package) as session:
            got = session.run(feed, function_name=function.name)
        rows = output_parity(planned.outputs, got, reference, planned.by_role)
        worst = min(rows, key=lambda r: r["psnr_db"])
        judge(
            "coreai_parity_psnr_db",
            f"worst PSNR (dB) over the asset's {len(rows)} matched output(s) vs the reference in torch fp32 "
            f"({worst['output']}: {worst['compared']}; run by the {runtime})",
            worst["psnr_db"],
        )
        details["output_parity"] = rows
        details["coreai"] = {"runtime": runtime}

    def hazards():
        reason = HAZARDS_UNMEASURED if options.precision == "fp16" else "the asset computes in fp32"
        for name in HAZARD_CHECKS:
            judge(name, "fp16 hazards (per-op, MIL reference executor)", None, reason)
        judge(
            "coreai_validator_non_finite_nodes",
            "nodes of the ExportedProgram whose outputs hold NaN or Inf (Core AI's validator)",
            None,
            VALIDATOR_UNMEASURED,
        )

    def rules():
        program = open_asset(options.package).program
        adopt(readiness_checks(program, strict=options.strict, precision=options.precision))

    stage(1, run_both)
    stage(2, hazards)
    stage(3, rules)
    batch, seq = planned.by_role["input_ids"].shape
    source = {**reference.source, "inputs": inputs_source(reference.pair, batch, list(options.texts) or None)}
    details["mapping"]["inputs_used"] = {k: list(v.shape) for k, v in feed.items()}
    return {"seq_len": int(seq), "batch_size": int(batch), "function": function.name}, source
