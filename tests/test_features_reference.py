"""Code features on real source files, held against independent references: Python's own
tokenizer for the standard library of the running interpreter, and the Linux kernel corpus."""

import io
import re
import sysconfig
import tokenize
from pathlib import Path

import numpy as np
import pytest

from probe.features import compute
from tests.conftest import shared_text

STDLIB = Path(sysconfig.get_paths()["stdlib"])


def tokenized_if_conditions(text: str) -> np.ndarray:
    """1 from just after a statement's `if`/`elif` keyword through the ':' that ends its
    condition (the first ':' token outside brackets), as Python's tokenizer reads it."""
    offsets = np.cumsum([0] + [len(line) for line in text.splitlines(keepends=True)])
    out = np.zeros(len(text), np.float32)
    statement_start, start, depth = True, None, 0
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        at, end = (offsets[row - 1] + column for row, column in (token.start, token.end))
        if token.type == tokenize.NEWLINE:
            statement_start, start = True, None
            continue
        if token.type in (tokenize.NL, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT):
            continue
        if statement_start and token.string in ("if", "elif"):
            start, depth = end, 0
        elif start is not None and token.type == tokenize.OP:
            depth += (token.string in "([{") - (token.string in ")]}")
            if token.string == ":" and depth == 0:
                out[start:end], start = 1, None
        statement_start = False
    return out


@pytest.mark.parametrize(
    "name",
    [
        "ast.py",  # `if name := f(x):` (an assignment expression in the condition)
        "encodings/utf_16.py",  # a conditional expression `... \n if b else c` in parens
        "unittest/mock.py",  # comprehensions whose `if` starts a line
    ],
)
def test_python_if_condition_matches_the_tokenizer(name):
    path = STDLIB / name
    if not path.is_file():
        pytest.skip(f"{name} is not in this interpreter's standard library")
    text = path.read_text(encoding="utf-8")
    got, expected = compute("in_if_condition", text), tokenized_if_conditions(text)
    wrong = np.flatnonzero(got != expected)
    assert len(wrong) == 0, (
        f"{len(wrong)} chars differ, first at {text[wrong[0] - 40 : wrong[0] + 20]!r}"
    )


def test_c_preprocessor_conditions_are_not_if_conditions():
    """`#if (A)` is no C `if`, however many blanks stand around its '#' (`#   if (A)`)."""
    text = shared_text("linux.txt", 1_000_000)
    values = compute("in_if_condition", text)
    directives = list(re.finditer(r"^[ \t]*#[ \t]*(?:el)?if\b[^\n]*", text, re.MULTILINE))
    assert any(m.group().startswith("#   if (") for m in directives)  # the case this is about
    marked = [m.group() for m in directives if values[m.start() : m.end()].any()]
    assert not marked, marked[:3]
