"""The kernel table itself: every kernel names the coremltools op definition it follows, and every kernel is
checked by one of the kernel test modules (tests/mil/test_kernels_*.py)."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

from verification.mil import KERNELS

# "iOS15.elementwise_binary.add: ..." or "iOS15/iOS17.reduction.reduce_argmax: ...": the opset version(s)
# whose op definition (coremltools.converters.mil.mil.ops.defs.<version>.<module>.<op>) the kernel follows.
PUBLISHED_SEMANTICS = re.compile(
    r"^(?P<versions>iOS1[5-8](?:/iOS1[5-8])*)\.(?P<module>[a-z_0-9]+)\.(?P<op>\w+)\b"
)
# Ops of coremltools' ``coreml`` dialect (coreml_update_state) live outside the iOS version modules.
DIALECT_SEMANTICS = re.compile(r"^coreml_dialect\.ops\.(?P<op>\w+) \((?P<versions>iOS1[5-8])")


def test_every_kernel_docstring_names_the_published_op_it_follows():
    """Each docstring starts with version(s).module.op, the op is the kernel's own op type, and that op
    exists in coremltools' definitions for every version named."""
    problems = []
    for op_type, fn in sorted(KERNELS.items()):
        doc = (fn.__doc__ or "").strip()
        dialect = DIALECT_SEMANTICS.match(doc)
        if dialect is not None:
            module = importlib.import_module("coremltools.converters.mil.mil.ops.defs.coreml_dialect.ops")
            if dialect["op"] != op_type or not inspect.isclass(getattr(module, op_type, None)):
                problems.append(f"{op_type}: the coreml dialect defines no op {dialect['op']!r}")
            continue
        match = PUBLISHED_SEMANTICS.match(doc)
        if match is None:
            problems.append(f"{op_type}: docstring does not start with iOS<version>.<module>.<op>: {doc!r}")
            continue
        if match["op"] != op_type:
            problems.append(f"{op_type}: docstring names op {match['op']!r}")
        for version in match["versions"].split("/"):
            module_name = f"coremltools.converters.mil.mil.ops.defs.{version}.{match['module']}"
            try:
                module = importlib.import_module(module_name)
            except ImportError:
                problems.append(f"{op_type}: no module {module_name}")
                continue
            if not inspect.isclass(getattr(module, op_type, None)):
                problems.append(f"{op_type}: {module_name} defines no op {op_type!r}")
    assert not problems, "\n".join(problems)


CHECKERS = {
    "check_against_coremltools",
    "run_one_op",
    "coremltools_reference",
    "check_constant_op_against_coremltools",
}


CHECKERS |= {"check_constexpr_against_coremltools"}
# the kernel test modules, and the modules of kernel families whose checks build programs of their own
# (compressed constants; stateful ops)
FAMILY_MODULES = ("test_mil_constexpr", "test_mil_state")
KERNEL_TEST_MODULES = sorted(
    p.stem
    for p in Path(__file__).parent.glob("test_*.py")
    if p.stem.startswith("test_kernels_") or p.stem in FAMILY_MODULES
)


def op_types_checked_in(module) -> set:
    """Op types ``module`` checks: literal first arguments of the checking helpers, the values of
    every ``op_type`` parameter of a parametrized test, and the ops a family module lists in
    ``OPS_CHECKED_BY_PROGRAMS`` (ops such as read_state that only a whole stateful program can run)."""
    found = set(getattr(module, "OPS_CHECKED_BY_PROGRAMS", ()))
    for node in ast.walk(ast.parse(inspect.getsource(module))):
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", None) in CHECKERS
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add(node.args[0].value)
    for test in vars(module).values():
        for mark in getattr(test, "pytestmark", []):
            if mark.name != "parametrize":
                continue
            names = [n.strip() for n in mark.args[0].split(",")]
            if "op_type" in names:
                index = names.index("op_type")
                found |= {value[index] if len(names) > 1 else value for value in mark.args[1]}
    return found


def test_every_kernel_is_checked_by_a_kernel_test_module():
    assert len(KERNEL_TEST_MODULES) >= 8, KERNEL_TEST_MODULES
    checked = set()
    for name in KERNEL_TEST_MODULES:
        checked |= op_types_checked_in(importlib.import_module(name))
    unchecked = sorted(set(KERNELS) - checked)
    assert not unchecked, f"kernels no module of {KERNEL_TEST_MODULES} checks: {unchecked}"
