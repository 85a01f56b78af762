"""Core AI's NaN/Inf validator as a second opinion beside the project's fp16 hazard finder.

Core AI ships a validator for torch ``ExportedProgram``s (``coreai_torch.debugging.validator``): it runs
the program node by node (torch FX, on CPU) and lists the nodes whose outputs hold NaN or Inf. Run on the
fp16 ExportedProgram that Core AI converts, it says where torch's own fp16 arithmetic goes non-finite;
the project's hazard finder (``verification.mil.hazards.find_hazards``) says where the Core ML fp16
program does, op by op, on the MIL reference executor. The two can disagree for real reasons (torch's
fp16 CPU kernels compute scalars in fp32 and round once; an fp16 MIL program stores every literal in
fp16), so the disagreements are reported, not hidden.

A validator object remembers its search: a second ``check_for_*`` on the same object returns the first
check's result (measured with coreai-torch 0.4.3), so every check here builds a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from dataclasses import dataclass, field

from verification.checks import Check, at_most

from .convert import import_coreai_torch


@dataclass(frozen=True)
class NonFiniteNodes:
    nan: list[str]  # FX node names (topological order) whose outputs hold NaN
    inf: list[str]
    targets: dict = field(default_factory=dict)  # node name -> aten target


@dataclass(frozen=True)
class SecondOpinion:
    coreai: NonFiniteNodes
    hazard_first: str | None  # "op_type 'name'" of the hazard finder's first non-finite op, or None
    disagreements: list[str]

    def check(self) -> Check:
        check = at_most(
            "coreai_validator_agrees",
            "disagreements between Core AI's NaN/Inf validator and the fp16 hazard finder",
            float(len(self.disagreements)),
            0.0,
        )
        reason = "; ".join(self.disagreements) or (
            "both clean"
            if self.hazard_first is None and not self.coreai.nan + self.coreai.inf
            else f"both non-finite: hazard finder first at {self.hazard_first}, Core AI validator at "
            f"{(self.coreai.nan + self.coreai.inf)[0]}"
        )
        return Check(check.name, check.metric, check.value, check.threshold, check.passed, True, reason)


def _new_validator(exported_program):
    import_coreai_torch()
    from coreai_torch.debugging.validator import create_validator_for_exported_program

    validator = create_validator_for_exported_program(exported_program)
    validator.show_progress = False
    return validator


def non_finite_nodes(exported_program, inputs) -> NonFiniteNodes:
    """The nodes of ``exported_program`` whose outputs go NaN / Inf on ``inputs`` (a tuple of tensors or
    arrays in argument order), by Core AI's validator: one new validator per check."""

    async def run():
        nan = await _new_validator(exported_program).check_for_nans(inputs)
        inf = await _new_validator(exported_program).check_for_infs(inputs)
        return nan, inf

    with contextlib.redirect_stdout(io.StringIO()):
        nan, inf = asyncio.run(run())
    targets = {node.name: str(node.target) for node in nan.failed_nodes + inf.failed_nodes}
    return NonFiniteNodes([n.name for n in nan.failed_nodes], [n.name for n in inf.failed_nodes], targets)


def second_opinion(exported_program, inputs, hazard_report) -> SecondOpinion:
    """Core AI's validator on the fp16 ``exported_program`` beside ``hazard_report`` (a
    ``verification.mil.hazards.HazardReport`` of the same model's Core ML fp16 program)."""
    nodes = non_finite_nodes(exported_program, inputs)
    first = hazard_report.first_non_finite
    hazard_first = f"{first.op_type} {first.name!r}" if first is not None else None
    coreai_first = (nodes.nan + nodes.inf)[:1]
    disagreements = []
    if hazard_first and not coreai_first:
        disagreements.append(
            f"the hazard finder sees the Core ML fp16 program go non-finite at {hazard_first} "
            f"({first.nan_count} NaN, {first.inf_count} Inf); Core AI's validator finds no NaN or Inf in "
            "torch's fp16 run of the same model"
        )
    elif coreai_first and not hazard_first:
        node = coreai_first[0]
        disagreements.append(
            f"Core AI's validator sees torch's fp16 run go non-finite at {node} ({nodes.targets.get(node)}; "
            f"{len(nodes.nan)} node(s) with NaN, {len(nodes.inf)} with Inf); the hazard finder finds none in "
            "the Core ML fp16 program"
        )
    elif first is not None and first.nan_count and not nodes.nan:
        disagreements.append(
            f"NaN in the Core ML fp16 program from {hazard_first}; torch's fp16 run has Inf only "
            f"(first at {nodes.inf[0]}, {nodes.targets.get(nodes.inf[0])})"
        )
    return SecondOpinion(nodes, hazard_first, disagreements)
