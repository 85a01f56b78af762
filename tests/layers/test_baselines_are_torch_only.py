"""A pair's baseline is built and run from torch and transformers alone: a baseline made with the project's
own helpers (the activation factory, porting, the layout switch) would change together with the layer it
checks, and no pair could see the defect. Checked on the pair modules' source: the functions a pair
passes as ``make_baseline`` and ``run_baseline`` (and the module-level functions they call) may not use a
name the module imports from ``ane_layers`` or ``ane_models``."""

import ast
import inspect

import pytest

from verification.equivalence import pairs
from verification.equivalence.pairs import REGISTRY

PAIR_MODULES = sorted(
    {inspect.getmodule(pair.make_baseline).__name__ for pair in REGISTRY.values()}
    | {inspect.getmodule(pair.run_baseline).__name__ for pair in REGISTRY.values()}
)


def project_names(tree: ast.Module) -> set:
    """Names bound by ``from ane_layers... import`` / ``import ane_...`` in the module."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in (
            "ane_layers",
            "ane_models",
        ):
            names |= {alias.asname or alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            names |= {
                (alias.asname or alias.name).split(".")[0]
                for alias in node.names
                if alias.name.split(".")[0] in ("ane_layers", "ane_models")
            }
    return names


def baseline_functions(tree: ast.Module) -> list:
    """The expressions given as make_baseline= / run_baseline= in the module's LayerPair(...) calls."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "LayerPair":
            found += [kw.value for kw in node.keywords if kw.arg in ("make_baseline", "run_baseline")]
    return found


def names_used(node, functions: dict, seen: set) -> set:
    """Every Name read in ``node``, following calls to the module's own functions."""
    used = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Name):
            used.add(child.id)
            if child.id in functions and child.id not in seen:
                seen.add(child.id)
                used |= names_used(functions[child.id], functions, seen)
    return used


@pytest.mark.parametrize("module_name", PAIR_MODULES)
def test_no_baseline_uses_the_project_s_own_code(module_name):
    module = __import__(module_name, fromlist=["_"])
    tree = ast.parse(inspect.getsource(module))
    forbidden = project_names(tree)
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    leaks, expressions = set(), baseline_functions(tree)
    assert expressions, f"{module_name}: no make_baseline / run_baseline found in its LayerPair(...) calls"
    for expression in expressions:
        leaks |= names_used(expression, functions, set()) & forbidden
    assert not leaks, f"{module_name}: baselines use project code {sorted(leaks)} (a baseline is torch alone)"


def test_every_pair_module_is_checked():
    assert len(PAIR_MODULES) >= 5 and all(m.startswith(pairs.__name__) for m in PAIR_MODULES), PAIR_MODULES
