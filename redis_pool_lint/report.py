"""Findings rendered for people and for CI: ``text``, ``json``, ``github`` and ``sarif``.

Every format carries the same facts, taken from the finding and the catalogue; the text format
is flake8's, so ``check`` and flake8 print the same lines.
"""
from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass
from typing import Dict, List, Sequence, TextIO, Tuple

from . import __version__
from .rules import BY_CODE, HOMEPAGE, RULES, Fix, Rule, rule_url

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


@dataclass(frozen=True)
class Item:
    """One finding as shown: the path as the user gave it, and 1-based positions."""

    path: str
    code: str
    message: str
    row: int
    column: int
    end_row: int
    end_column: int

    @property
    def rule(self) -> Rule:
        return BY_CODE[self.code]


def item(shown: str, finding) -> Item:
    _, _, end_line, end_col = finding.span
    if end_line < finding.line or (end_line == finding.line and end_col < finding.col):
        end_line, end_col = finding.line, finding.col  # no span known: a point
    return Item(shown, finding.code, finding.message, finding.line, finding.col + 1, end_line, end_col + 1)


def _fix_mark(rule: Rule) -> str:
    return {Fix.SAFE: "[*] ", Fix.UNSAFE: "[-] "}.get(rule.fix, "")


def write_text(items: Sequence[Item], out: TextIO, show_fixes: bool = False) -> None:
    for i in items:
        text = i.message
        if show_fixes:
            code, _, rest = text.partition(" ")
            text = f"{code} {_fix_mark(i.rule)}{rest}"
        out.write(f"{i.path}:{i.row}:{i.column}: {text}\n")


def fix_footer(items: Sequence[Item]) -> str:
    safe = sum(1 for i in items if i.rule.fix is Fix.SAFE)
    unsafe = sum(1 for i in items if i.rule.fix is Fix.UNSAFE)
    if not safe and not unsafe:
        return ""
    more = f" ({unsafe} more with `--unsafe-fixes`: [-])" if unsafe else ""
    return f"[*] {safe} fixable with `redis-pool-lint fix`{more}\n"


def as_dict(i: Item) -> Dict[str, object]:
    rule = i.rule
    return {
        "code": i.code,
        "name": rule.name,
        "message": i.message.partition(" ")[2],
        "filename": i.path,
        "location": {"row": i.row, "column": i.column},
        "end_location": {"row": i.end_row, "column": i.end_column},
        "fix": {"applicability": rule.fix.value, "message": rule.fix_summary},
        "url": rule_url(rule.code),
    }


def write_json(items: Sequence[Item], out: TextIO) -> None:
    json.dump([as_dict(i) for i in items], out, indent=2)
    out.write("\n")


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _annotation(props: Sequence[Tuple[str, object]], message: str) -> str:
    joined = ",".join(f"{k}={_escape_property(str(v))}" for k, v in props)
    return f"::error {joined}::{_escape_data(message)}\n"


#: where a parse error says it is: ``cannot parse: invalid syntax (line 2)``
ERROR_LINE = re.compile(r"\(line (\d+)\)")


def write_github(items: Sequence[Item], out: TextIO, errors: Sequence[Tuple[str, str]] = ()) -> None:
    """GitHub Actions workflow commands: one ``::error`` annotation per finding, and one per file
    that could not be analysed (on the line the parser names, else the first)."""
    for i in items:
        out.write(_annotation((
            ("title", f"redis-pool-lint ({i.code})"), ("file", i.path), ("line", i.row),
            ("col", i.column), ("endLine", i.end_row), ("endColumn", i.end_column)),
            f"{i.path}:{i.row}:{i.column}: {i.message}"))
    for path, message in errors:
        where = ERROR_LINE.search(message)
        out.write(_annotation((("title", "redis-pool-lint (not analysed)"), ("file", path),
                               ("line", where.group(1) if where else 1)), f"{path}: {message}"))


def _uri(path: str) -> str:
    rel = os.path.relpath(os.path.abspath(path))
    return rel.replace(os.sep, "/") if not rel.startswith("..") else "file://" + os.path.abspath(path)


def sarif_rule(rule: Rule) -> Dict[str, object]:
    from .docs import rule_markdown

    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": rule.what},
        "help": {"text": rule.why, "markdown": rule_markdown(rule)},
        "helpUri": rule_url(rule.code),
        "defaultConfiguration": {"level": "error", "enabled": rule.default_enabled},
        "properties": {"fix": rule.fix.value, "tags": ["redis", "performance", "reliability"]},
    }


def sarif(items: Sequence[Item], errors: Sequence[Tuple[str, str]] = ()) -> Dict[str, object]:
    index = {r.code: n for n, r in enumerate(RULES)}
    results = [{
        "ruleId": i.code,
        "ruleIndex": index[i.code],
        "level": "error",
        "message": {"text": i.message.partition(" ")[2]},
        "locations": [{"physicalLocation": {
            "artifactLocation": {"uri": _uri(i.path), "uriBaseId": "%SRCROOT%"},
            "region": {"startLine": i.row, "startColumn": i.column,
                       "endLine": i.end_row, "endColumn": i.end_column},
        }}],
    } for i in items]
    notes = [{"level": "error", "message": {"text": message},
              "locations": [{"physicalLocation": {"artifactLocation": {"uri": _uri(path), "uriBaseId": "%SRCROOT%"}}}]}
             for path, message in errors]
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "redis-pool-lint", "version": __version__,
                                "informationUri": HOMEPAGE, "rules": [sarif_rule(r) for r in RULES]}},
            "originalUriBaseIds": {"%SRCROOT%": {"uri": "file://" + os.getcwd().rstrip("/") + "/"}},
            "invocations": [{"executionSuccessful": not errors, "toolExecutionNotifications": notes}],
            "results": results,
        }],
    }


def write_sarif(items: Sequence[Item], out: TextIO, errors: Sequence[Tuple[str, str]] = ()) -> None:
    json.dump(sarif(items, errors), out, indent=2)
    out.write("\n")


def statistics(items: Sequence[Item]) -> str:
    """flake8's ``--statistics``: a count per code, with the rule's message."""
    counts = Counter(i.code for i in items)
    return "".join(f"{counts[code]:<5} {code} {BY_CODE[code].summary}\n"
                   for code in sorted(counts))


def fixed_summary(fixed: Dict[str, List[str]], verb: str = "Fixed") -> str:
    """ruff's ``--show-fixes`` after a fix: per file, how many of each code were fixed (``verb``
    "Would fix" under ``--diff``, which writes nothing)."""
    total = sum(len(codes) for codes in fixed.values())
    if not total:
        return ""
    lines = [f"{verb} {total} finding(s):"]
    for path in sorted(fixed):
        lines.append(f"- {path}:")
        for code, count in sorted(Counter(fixed[path]).items()):
            lines.append(f"    {count} × {code} ({BY_CODE[code].name})")
    return "\n".join(lines) + "\n"
