"""Every project document cited from code, tests, benchmarks or the README exists in the repository, and
no citation points outside it (the notes the project started from live elsewhere)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [
    "README.md",
    *(
        str(p.relative_to(ROOT))
        for d in ("verification", "ane_layers", "ane_models", "benchmarks", "scripts")
        for p in (ROOT / d).rglob("*.py")
    ),
]
CITATION = re.compile(r"\bdocs/([\w.-]+\.md)")


def test_cited_docs_exist_and_none_is_outside_the_repository():
    cited, outside = {}, []
    for name in SOURCES:
        text = (ROOT / name).read_text(encoding="utf-8")
        for match in CITATION.finditer(text):
            cited.setdefault(match.group(1), []).append(name)
        if "ane-notes" in text:
            outside.append(name)
    assert cited, "no docs/ citation found at all: the pattern is broken"
    missing = {doc: where for doc, where in cited.items() if not (ROOT / "docs" / doc).is_file()}
    assert not missing, f"cited but not in docs/: {missing}"
    assert not outside, f"cite the notes outside the repository (use docs/ane-facts.md): {outside}"
