"""Splitting GitHub-flavoured Markdown table rows the way GitHub does: a pipe after a backslash is text."""

import re


def cells(row: str) -> list[str]:
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", row.strip())[1:-1]]


def table_after(markdown: str, heading: str) -> list[list[str]]:
    """The rows (header and separator left out) of the first table after ``heading``."""
    lines = markdown.split(heading, 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(cells(line))
    return rows
