"""What the command shows: progress (on a terminal only, never with --quiet), --version, help text for
every option, allowed values as words, and each reason a check was not measured said once."""

import io
import re
import subprocess
from pathlib import Path

import pytest

from verification.release.cli import build_parser, main
from verification.release.console import Progress, not_measured_reasons, print_checks


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_counters_are_drawn_on_a_terminal_only():
    terminal, log = Terminal(), io.StringIO()
    for stream in (terminal, log):
        progress = Progress(2, stream)
        progress(0, "convert", None)
        for done in range(4):
            progress.step("programs converted", done, 3)
        progress(0, "convert", 1.5)
    assert "programs converted [####################] 3/3" in terminal.getvalue()
    assert "[1/2] convert" in terminal.getvalue()
    assert log.getvalue() == "[1/2] convert ...........................    1.5 s\n"


def test_quiet_draws_nothing_even_on_a_terminal():
    terminal = Terminal()
    progress = Progress(2, terminal, quiet=True)
    progress(0, "convert", None)
    progress.step("programs converted", 3, 3)
    progress(0, "convert", 1.5)
    progress.note("an estimate")
    assert terminal.getvalue() == ""


def test_each_not_measured_reason_is_said_once():
    device = "out-of-spec device: Linux x86_64: not an Apple device, no Neural Engine; no Core ML runtime"
    plan = "not available here: compute plans need macOS 14.4 or newer with Core ML (this is Linux)"
    checks = [
        {
            "name": n,
            "measured": False,
            "value": None,
            "threshold": 1.0,
            "passed": None,
            "reason": f"{n} at sequence 128, batch 1 not measured: {device}",
        }
        for n in ("speedup_vs_baseline", "ane_speedup_vs_cpu_only")
    ] + [
        {
            "name": n,
            "measured": False,
            "value": None,
            "threshold": 1.0,
            "passed": None,
            "reason": f"{plan}; {plan}",
        }
        for n in ("ane_op_share", "ane_fallback_ops")
    ]
    assert not_measured_reasons(checks) == [
        (f"at sequence 128, batch 1: {device}", ["speedup_vs_baseline", "ane_speedup_vs_cpu_only"]),
        (
            "compute plans need macOS 14.4 or newer with Core ML (this is Linux)",
            ["ane_op_share", "ane_fallback_ops"],
        ),
    ]
    out = io.StringIO()
    print_checks(checks, out)
    text = out.getvalue()
    assert text.count("compute plans need macOS 14.4") == 1 and text.count("no Neural Engine") == 1
    assert "not measured: speedup_vs_baseline, ane_speedup_vs_cpu_only: at sequence 128" in text


def test_version_names_the_tool_and_the_commit(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    line = capsys.readouterr().out.strip()
    root = Path(__file__).resolve().parents[2]
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True)
    from verification.release.reports import provenance

    # the commit is read from the git tree the package runs from: an installed copy (a tox cell's, inside
    # this tree's .tox) has none
    from_the_tree = provenance.SOURCE_ROOT == root
    if head.returncode == 0 and from_the_tree:
        assert re.fullmatch(
            rf"ane-verify \S+ \(commit {head.stdout.strip()[:12]}(, with local changes)?\)", line
        ), line
    else:
        assert line.endswith("(commit unknown)"), line


OWN_COMMANDS = ("run", "gate", "device", "layers")  # the release gate's; sensitivity is compression's


def _subcommands():
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return [(None, parser), *((n, p) for n, p in action.choices.items() if n in OWN_COMMANDS)]


@pytest.mark.parametrize("name,parser", _subcommands(), ids=lambda x: x if isinstance(x, str) else "")
def test_every_option_has_help_and_says_its_default(name, parser):
    for action in parser._actions:
        if action.dest in ("help", "command"):
            continue
        assert action.help, f"{name}: {action.option_strings or action.dest} has no help"
        if action.default not in (None, False) and action.option_strings:
            assert "default" in action.help, f"{name}: {action.option_strings} does not say its default"
        text = parser.format_help()
        assert "%(" not in text


def test_layer_pairs_are_listed_and_checked(capsys):
    from verification.equivalence.pairs import REGISTRY

    parser = dict(_subcommands())["layers"]
    assert all(name in " ".join(parser.format_help().split()) for name in REGISTRY)
    code = main(["layers", "--pair", "no_such_pair"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "--pair: invalid choice: 'no_such_pair' (expected one of " in err
    assert sorted(REGISTRY)[0] in err and "'" + sorted(REGISTRY)[0] + "'" not in err


def test_layers_runs_a_named_pair_quietly(capsys):
    from verification.equivalence.pairs import REGISTRY

    name = sorted(REGISTRY)[0]
    assert main(["layers", "--pair", name, "--examples", "1", "--quiet"]) in (0, 1)
    captured = capsys.readouterr()
    assert name in captured.out and captured.err == ""
