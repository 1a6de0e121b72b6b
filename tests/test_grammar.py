"""The "newer Python" hint on a file this Python cannot parse: given only when libcst reads the
file and the refused line holds a construct newer than the running Python."""
import ast
import sys
import time

import pytest

from redis_pool_lint.analysis.load import describe_error
from redis_pool_lint.grammar import newer_syntax

# (source, the Python that first reads it, the construct)
NEWER = [
    ("match command:\n    case 'go':\n        pass\n", (3, 10), "PEP 634 match statement"),
    ("try:\n    pass\nexcept* ValueError:\n    pass\n", (3, 11), "PEP 654 except*"),
    ("x = a[*b]\n", (3, 11), "PEP 646 star expression in a subscript or annotation"),
    ("type Alias = list[int]\n", (3, 12), "PEP 695 type statement"),
    ("class Box[T]:\n    pass\n", (3, 12), "PEP 695 type parameters"),
    ("name = 'x'\nmsg = f\"{\"nested\" + name}\"\n", (3, 12), "PEP 701 f-string"),
    ("msg = f\"{'\\n'.join(lines)}\"\n", (3, 12), "PEP 701 f-string"),
    ("def first[T = int](xs: list[T]) -> T:\n    return xs[0]\n", (3, 13), "PEP 696 type parameter default"),
    ("greeting = t'hello {name}'\n", (3, 14), "PEP 750 template string"),
    ("try:\n    pass\nexcept ValueError, TypeError:\n    pass\n", (3, 14), "PEP 758 except without parentheses"),
]


def refusal(source: str):
    try:
        ast.parse(source)
    except SyntaxError as exc:
        return exc
    return None


@pytest.mark.parametrize("source,version,construct", NEWER, ids=[c for *_, c in NEWER])
def test_newer_syntax_is_named_with_the_python_that_reads_it(source, version, construct):
    exc = refusal(source)
    if sys.version_info[:2] >= version:
        assert exc is None  # this Python reads it: nothing to say
        return
    assert exc is not None
    assert newer_syntax(source.encode(), exc.lineno) == (version, construct)
    dotted = f"{version[0]}.{version[1]}"
    assert describe_error(exc, source.encode()).endswith(
        f"; it uses Python {dotted} syntax ({construct}): run redis-pool-lint with Python {dotted} or newer")


@pytest.mark.parametrize("source", [
    "def f(:\n    pass\n",                               # a typo
    "x = (1 +\n",                                        # a typo libcst refuses too
    "type X = int\n\nx = 1\n1 = x\n",                   # libcst reads it, but the refused line is plain
    "def f(x):\n    return x +\nclass Box[T]:\n    pass\n",  # a typo before newer syntax
], ids=["typo", "unclosed", "typo-after-newer", "typo-before-newer"])
def test_a_typo_gets_no_newer_python_hint(source):
    exc = refusal(source)
    assert exc is not None
    said = describe_error(exc, source.encode())
    assert said == f"cannot parse: {exc.msg} (line {exc.lineno})", said


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="this Python reads PEP 695 code")
@pytest.mark.parametrize("tail", [
    "x = " + "[" * 3000 + "]" * 3000 + "\n",      # would crash libcst's native parser (SIGSEGV)
    "x = " + " and ".join(["x"] * 50000) + "\n",  # likewise, on an 8 MB stack
    "x = " + "lambda: " * 5000 + "1\n",           # would take minutes
], ids=["brackets", "and-chain", "lambdas"])
def test_a_module_too_deep_for_libcst_is_not_handed_to_it(tail):
    source = ("type Alias = int\n" + tail).encode()
    started = time.monotonic()
    assert newer_syntax(source, 1) is None
    assert time.monotonic() - started < 5
