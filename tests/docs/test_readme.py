"""The README as a newcomer meets it: at most 300 lines; its usage block lists every command and option
of the real parser and nothing else; every ``ane-verify`` command in a shell block (README and docs/)
parses; every Python block runs and prints what the ``text`` block after it says; every figure outside
the generated tables names its date, its machine (cores) and the command that measured it."""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from verification.release.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCUMENTS = [README, *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.M | re.S)
MARKERS = re.compile(r"<!-- ([\w-]+):begin.*?<!-- \1:end -->", re.S)
SHELL = {"bash", "sh", "shell", "console"}


def blocks(text: str) -> list[tuple[str, str, int]]:
    """(language, body, line number) of every fenced block."""
    return [(m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1) for m in FENCE.finditer(text)]


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_the_readme_is_at_most_300_lines():
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= 300, f"README.md is {lines} lines; move detail to docs/ (limit 300)"


# ---- the usage block against the parser


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _options(parser: argparse.ArgumentParser) -> set[str]:
    """The options --help shows (a deprecated alias hidden with SUPPRESS is not advertised)."""
    return {
        s
        for a in parser._actions
        if a.help != argparse.SUPPRESS
        for s in a.option_strings
        if s.startswith("--") and s != "--help"
    }


def usage_entries(text: str) -> dict[str, str]:
    """The README's usage block, per command ("" for the top level): the entry's text, its indented
    continuation lines included."""
    section = text.split("\n## Usage\n", 1)[1]
    language, body, _ = blocks(section)[0]
    assert language == "text", f"the first block under '## Usage' is ```{language}, expected ```text"
    entries: dict[str, str] = {}
    current = None
    for line in body.splitlines():
        if line.startswith("ane-verify"):
            words = line.split()
            current = "" if len(words) < 2 or words[1].startswith("[") else words[1]
            assert current not in entries, f"usage block: command {current!r} listed twice"
            entries[current] = line
        elif line.startswith(" ") and current is not None:
            entries[current] += "\n" + line
        elif line.strip():
            raise AssertionError(f"usage block: a line neither 'ane-verify ...' nor indented: {line!r}")
    return entries


def usage_problems(text: str) -> list[str]:
    parser = build_parser()
    entries = usage_entries(text)
    problems = []
    commands = {"": parser, **_subcommands(parser)}
    if set(entries) != set(commands):
        problems.append(f"commands: usage block lists {sorted(entries)}, the parser has {sorted(commands)}")
    for name, command in commands.items():
        entry = entries.get(name, "")
        listed = set(re.findall(r"--[a-z][a-z0-9-]*", entry))
        wanted = _options(command) if name else {"--version", "--debug"}
        if listed - wanted:
            problems.append(f"ane-verify {name}: usage lists {sorted(listed - wanted)}, not in the parser")
        if wanted - listed:
            problems.append(f"ane-verify {name}: parser has {sorted(wanted - listed)}, missing from usage")
        for action in command._actions if name else []:
            choices = action.choices
            if not isinstance(choices, (list, tuple)):  # lazy choices (layers --pair): --help lists them
                continue
            if action.option_strings and "|".join(choices) not in entry:
                shown = "|".join(choices)
                problems.append(f"ane-verify {name} {action.option_strings[0]}: '{shown}' missing")
            missing = [c for c in choices if not re.search(rf"\b{re.escape(c)}\b", entry)]
            if not action.option_strings and missing:
                problems.append(f"ane-verify {name} {action.dest}: choices {missing} missing from usage")
    return problems


def test_the_usage_block_lists_every_command_and_option_of_the_parser_and_no_other():
    problems = usage_problems(README.read_text(encoding="utf-8"))
    assert not problems, "README usage block vs build_parser():\n  " + "\n  ".join(problems)


def test_the_usage_check_sees_a_missing_and_an_invented_option():
    text = README.read_text(encoding="utf-8")
    planted = text.replace("[--new-tokens N]", "[--new-tokenz N]", 1)
    assert planted != text
    problems = usage_problems(planted)
    assert any("--new-tokens" in p and "missing" in p for p in problems), problems
    assert any("--new-tokenz" in p and "not in the parser" in p for p in problems), problems


# ---- shell blocks: every ane-verify command parses


def shell_commands(text: str) -> list[tuple[list[str], int]]:
    """The argument lists of every ``ane-verify`` / ``python -m verification`` call in shell blocks."""
    found = []
    for language, body, line_number in blocks(text):
        if language not in SHELL:
            continue
        for line in body.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            segment: list[str] = []
            for word in [*words, "&&"]:
                if word not in ("&&", "||", ";", "|"):
                    segment.append(word)
                    continue
                if segment[:1] == ["ane-verify"]:
                    found.append((segment[1:], line_number))
                elif segment[:3] == ["python", "-m", "verification"]:
                    found.append((segment[3:], line_number))
                segment = []
    return found


@pytest.mark.parametrize("path", DOCUMENTS, ids=_rel)
def test_every_ane_verify_command_in_a_shell_block_parses(path):
    for arguments, line in shell_commands(path.read_text(encoding="utf-8")):
        where = f"{_rel(path)}:{line}: ane-verify {shlex.join(arguments)}"
        try:
            build_parser().parse_args(arguments)
        except SystemExit as done:  # --version, --help
            assert done.code == 0, f"{where}: exit {done.code}"
        except Exception as error:
            raise AssertionError(f"{where}: {error}") from None


def test_the_readme_has_an_example_of_every_command_and_a_planted_typo_fails():
    used = {arguments[0] for arguments, _ in shell_commands(README.read_text(encoding="utf-8"))}
    missing = set(_subcommands(build_parser())) - used
    assert not missing, f"README: no shell example of ane-verify {sorted(missing)}"
    (arguments, _), *_ = shell_commands("```bash\nane-verify run distilbert --seqlen 32\n```\n")
    with pytest.raises(Exception, match="seqlen"):
        build_parser().parse_args(arguments)


# ---- python blocks: run as written, print what the text says


def python_blocks() -> list[tuple[Path, int, str, str | None]]:
    """(file, line, code, the ```text block right after it, or None)."""
    found = []
    for path in DOCUMENTS:
        found_blocks = blocks(path.read_text(encoding="utf-8"))
        for index, (language, body, line) in enumerate(found_blocks):
            if language == "python":
                following = found_blocks[index + 1] if index + 1 < len(found_blocks) else None
                expected = following[1] if following and following[0] == "text" else None
                found.append((path, line, body, expected))
    return found


PYTHON_BLOCKS = python_blocks()


def test_the_readme_has_python_examples():
    assert sum(path == README for path, *_ in PYTHON_BLOCKS) >= 2, "README: the Python examples are gone"


@pytest.mark.parametrize(
    "path, line, code, expected", PYTHON_BLOCKS, ids=[f"{_rel(p)}:{n}" for p, n, _, _ in PYTHON_BLOCKS]
)
def test_every_python_block_runs_and_prints_what_the_text_says(path, line, code, expected, tmp_path):
    where = f"{_rel(path)}:{line}"
    assert expected is not None, f"{where}: a Python block must print and be followed by a ```text block"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{where}: exit {done.returncode}\n{done.stderr[-3000:]}"
    assert done.stdout.strip() == expected.strip(), (
        f"{where}: printed\n{done.stdout}\nthe README says\n{expected}"
    )


# ---- figures: date, machine and command beside each


FIGURE = re.compile(r"(?<!>= )(?<!<= )(?<!under )(?<!least )(?<!bar )\b\d+(\.\d+)? ?(dB|ms|s|min)\b")
DATE = re.compile(r"\b20\d\d-\d\d-\d\d\b")
MACHINE = re.compile(r"\b\d+ cores\b")
COMMAND = re.compile(r"`(ane-verify|python|tox|CI=true)[^`]*`")


def figure_problems(text: str) -> list[str]:
    problems = []
    for generated in MARKERS.finditer(text):
        if FIGURE.search(generated.group(0)) and not (
            DATE.search(generated.group(0)) and MACHINE.search(generated.group(0))
        ):
            problems.append(f"generated block {generated.group(1)}: no date or no cores")
    prose = FENCE.sub("", MARKERS.sub("", text))
    for paragraph in re.split(r"\n\s*\n", prose):
        if not FIGURE.search(paragraph):
            continue
        lacking = [n for n, p in (("date", DATE), ("machine (N cores)", MACHINE), ("command", COMMAND))
                   if not p.search(paragraph)]  # fmt: skip
        if lacking:
            problems.append(f"no {', '.join(lacking)} beside {FIGURE.search(paragraph).group(0)!r}: "
                            f"{' '.join(paragraph.split())[:160]}")  # fmt: skip
    return problems


def test_every_readme_figure_names_its_date_machine_and_command():
    problems = figure_problems(README.read_text(encoding="utf-8"))
    assert not problems, "README figures:\n  " + "\n  ".join(problems)


def test_the_figure_check_sees_a_figure_without_its_machine():
    assert figure_problems("Measured 2026-12-02 with `ane-verify run distilbert`: 81.8 dB.\n")
    assert not figure_problems("Measured 2026-12-02, 2 cores, `ane-verify run distilbert`: 81.8 dB.\n")
    assert not figure_problems("The bar is >= 45 dB, the goal under 30 s.\n")
