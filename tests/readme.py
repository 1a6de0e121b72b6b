"""README's code blocks, for the tests that run them as they are written."""
import re
from typing import List

from conftest import ROOT

README = ROOT / "README.md"
#: the repository's URL as README writes it (setup.cfg's ``url``); tests put a clone in its place
REPO_URL = "https://github.com/redis-pool-lint/redis-pool-lint"
SHA = re.compile(r"[0-9a-f]{40}")


def section(title: str) -> str:
    """The text of README's section with this heading (any level), up to the next heading of the
    same or a higher level; a ``#`` line inside a code block is not a heading."""
    lines = README.read_text(encoding="utf-8").splitlines(keepends=True)
    out, level, fenced = [], 0, False
    for line in lines:
        if line.startswith("```"):
            fenced = not fenced
        heading = re.match(r"(#+) (.*)\n", line) if not fenced else None
        if level and heading and len(heading.group(1)) <= level:
            break
        if level:
            out.append(line)
        elif heading and heading.group(2) == title:
            level = len(heading.group(1))
    assert level, f"README has no section {title!r}"
    return "".join(out)


def blocks(text: str, language: str) -> List[str]:
    return re.findall(rf"^```{language}\n(.*?)^```\n", text, re.MULTILINE | re.DOTALL)


def first_screen() -> List[str]:
    """The command lines of README's first code block, comments dropped."""
    text = README.read_text(encoding="utf-8")
    return [line.split("#")[0].strip() for line in blocks(text, "sh")[0].splitlines()]


def pinned_revs() -> List[str]:
    """Every ``<repository URL>@<rev>`` and pre-commit ``rev:`` of this repository in README."""
    text = README.read_text(encoding="utf-8")
    revs = re.findall(rf"{re.escape(REPO_URL)}@([^\s\"']+)", text)
    revs += re.findall(rf"repo: {re.escape(REPO_URL)}\n\s+rev: (\S+)", text)
    return revs
