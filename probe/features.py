"""Per-character features of a text, to hold recorded cells against.

A feature maps a text to one float32 value per character, aligned with model states: the value at
t describes the text up to and including character t (what a left-to-right scanner knows after
reading it). Binary features (0/1) are judged by AUROC, continuous ones by Pearson r.

The code features (in_string, in_comment, brace/paren depth, in_if_condition) all come from one
lexer, so they agree: a quote inside a comment opens no string, a brace inside a string nests
nothing. Line features are vectorised with numpy so a 1M-character text takes well under a second.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from probe.errors import ProbeError


@dataclass(frozen=True)
class Feature:
    name: str
    description: str  # one line, shown by `probe features`
    binary: bool  # 0/1 features are judged by AUROC, continuous ones by Pearson r
    function: Callable[[str], np.ndarray]


# ----------------------------------------------------------------------------- the lexer

CODE, STRING, COMMENT = 0, 1, 2
LANGUAGES = ("c", "python", "auto")
PREPROCESSOR_WORDS = "include|define|undef|if|ifdef|ifndef|elif|else|endif|pragma|error|warning|line"

# Each token is consumed whole; everything between tokens is code. Non-triple strings stop before
# an unterminated line end (C char-literal typos, apostrophes); a backslash escapes any char,
# including a newline (line continuation) and, in raw strings too, a quote.
_TOKENS = {
    "block": r"(?P<comment>/\*.*?(?:\*/|\Z))",
    "slash": r"(?P<comment2>//[^\r\n]*)",
    "directive": rf"(?P<directive>^[ \t]*\#[ \t]*(?:{PREPROCESSOR_WORDS})\b)",
    "hash": r"(?P<comment3>\#[^\r\n]*)",
    "triple": r'(?P<string>"""[^"\\]*(?:(?:\\.|"(?!""))[^"\\]*)*(?:"""|\Z)'
    r"|'''[^'\\]*(?:(?:\\.|'(?!''))[^'\\]*)*(?:'''|\Z))",
    "single": r'(?P<string2>"[^"\\\r\n]*(?:\\.[^"\\\r\n]*)*"?'
    r"|'[^'\\\r\n]*(?:\\.[^'\\\r\n]*)*'?)",
}
_KIND_OF_GROUP = {"comment": COMMENT, "comment2": COMMENT, "comment3": COMMENT}
_KIND_OF_GROUP |= {"string": STRING, "string2": STRING, "directive": CODE}


@dataclass(frozen=True)
class Lexed:
    """What the lexer knows after each char; arrays are read-only because they are cached."""

    kind: np.ndarray  # uint8: CODE, STRING or COMMENT
    python: bool  # whether Python rules were used (decides what an `if` condition is)
    paren: np.ndarray  # depth of ( and [ in code
    brace: np.ndarray  # depth of { in code


def looks_like_python(text: str) -> bool:
    """Cheap guess for language="auto": Python lines end in ':', C lines in ';' or '{'."""
    text = "\n" + text
    python = text.count("\ndef ") + text.count("\nimport ") + text.count(":\n")
    c = text.count(";\n") + text.count("{\n")
    return python > c


@functools.lru_cache(maxsize=8)
def _token_regex(language: str, python: bool) -> re.Pattern:
    if language == "c":
        names = ["block", "slash", "single"]
    elif language == "python":
        names = ["hash", "triple", "single"]
    else:  # auto: preprocessor lines are code, any other '#' starts a comment
        names = ([] if python else ["block", "slash"]) + ["directive", "hash", "triple", "single"]
    return re.compile("|".join(_TOKENS[name] for name in names), re.DOTALL | re.MULTILINE)


@functools.lru_cache(maxsize=2)
def lex(text: str, language: str = "auto") -> Lexed:
    """Split text into code, strings and comments: one regex pass that jumps from code to the
    next string or comment opener and consumes that token whole (a three-state scanner)."""
    if language not in LANGUAGES:
        raise ProbeError(f"unknown language {language!r}; expected one of {', '.join(LANGUAGES)}")
    python = language == "python" or (language == "auto" and looks_like_python(text))
    kind = np.zeros(len(text), np.uint8)
    for match in _token_regex(language, python).finditer(text):
        kind[match.start() : match.end()] = _KIND_OF_GROUP[match.lastgroup]
    codes, code = _codes(text), kind == CODE
    paren = _depth(codes, code, "([", ")]")
    brace = _depth(codes, code, "{", "}")
    for array in (kind, paren, brace):
        array.flags.writeable = False
    return Lexed(kind, python, paren, brace)


def _codes(text: str) -> np.ndarray:
    """Unicode code point of every char, without a Python loop."""
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")


def _is_any(codes: np.ndarray, chars: str) -> np.ndarray:
    return np.isin(codes, [ord(c) for c in chars])


def _depth(codes: np.ndarray, code: np.ndarray, opens: str, closes: str) -> np.ndarray:
    """Nesting depth after each char, counting code only; a stray closer at depth 0 is ignored."""
    step = _is_any(codes, opens).astype(np.int32) - _is_any(codes, closes)
    total = np.cumsum(step * code)
    # Clamping at 0 as we go is the same as lifting the walk by its lowest dip so far.
    return total - np.minimum(np.minimum.accumulate(total), 0)


# ----------------------------------------------------------------------------- code features


def in_string(text: str) -> np.ndarray:
    return (lex(text).kind == STRING).astype(np.float32)


def in_comment(text: str) -> np.ndarray:
    return (lex(text).kind == COMMENT).astype(np.float32)


def brace_depth(text: str) -> np.ndarray:
    return lex(text).brace.astype(np.float32)


def paren_depth(text: str) -> np.ndarray:
    return lex(text).paren.astype(np.float32)


_C_IF = re.compile(r"(?<![\w#])if\s*\(")  # not `#if (`, `elif (`, `notif (`
_PYTHON_IF = re.compile(r"^[ \t]*(?:el)?if\b", re.MULTILINE)  # statements only, not `a if b`


def _first_stop(stop: np.ndarray, depth: np.ndarray, level: int, start: int) -> int:
    """First index >= start where stop is set at depth <= level, or len; windows grow because
    conditions are short but must not cost O(n) each."""
    size = 256
    while start < len(stop):
        end = min(len(stop), start + size)
        hits = np.flatnonzero(stop[start:end] & (depth[start:end] <= level))
        if len(hits):
            return start + int(hits[0])
        start, size = end, size * 4
    return len(stop)


def in_if_condition(text: str) -> np.ndarray:
    """C: the parens after `if`, inclusive. Python: after the `if`/`elif` keyword through the ':'
    at the keyword's bracket depth (a line end outside brackets also stops a malformed one)."""
    lexed, codes = lex(text), _codes(text)
    code = lexed.kind == CODE
    out = np.zeros(len(text), np.float32)
    if not lexed.python:
        closers = code & _is_any(codes, ")]")
        for match in _C_IF.finditer(text):
            open_at = match.end() - 1
            if code[match.start()] and code[open_at]:
                level = int(lexed.paren[open_at]) - 1
                out[open_at : _first_stop(closers, lexed.paren, level, open_at + 1) + 1] = 1
        return out
    depth = lexed.paren + lexed.brace
    continued = np.zeros(len(text), bool)
    continued[1:] = codes[:-1] == ord("\\")
    stop = code & ((codes == ord(":")) | ((codes == ord("\n")) & ~continued))
    for match in _PYTHON_IF.finditer(text):
        start = match.end()
        if code[start - 1]:
            end = _first_stop(stop, depth, int(depth[start - 1]), start)
            out[start : end + 1 if end < len(text) and text[end] == ":" else end] = 1
    return out


# ----------------------------------------------------------------------------- prose features

_QUOTE_EVENT = re.compile(r'["“”]|\n[ \t\r]*\n')  # a quote char, or a blank line


def in_quote(text: str) -> np.ndarray:
    """Both quote chars count as inside; a blank line closes a quote left open by mistake."""
    out = np.zeros(len(text), np.float32)
    opened_at = None
    for match in _QUOTE_EVENT.finditer(text):
        at, char = match.start(), match.group()
        if opened_at is None:
            if char in '"“':
                opened_at = at
        elif char in '"”':
            out[opened_at : at + 1] = 1
            opened_at = None
        elif char != "“":  # a blank line; “ inside a quote changes nothing
            out[opened_at:at] = 1
            opened_at = None
    if opened_at is not None:
        out[opened_at:] = 1
    return out


# ----------------------------------------------------------------------------- line features


def _per_line(text: str, value_of_line: Callable[[str], int]) -> np.ndarray:
    """Spread one value per line over its chars, its '\\n' included."""
    lines = text.split("\n")
    sizes = np.array([len(line) + 1 for line in lines])
    sizes[-1] -= 1  # the last line has no '\n'
    return np.repeat(np.array([value_of_line(line) for line in lines], np.float32), sizes)


def pos_in_line(text: str) -> np.ndarray:
    """Chars since the last '\\n' (so in CRLF text the '\\n' sits one past the '\\r')."""
    codes = _codes(text)
    index = np.arange(len(codes))
    starts = np.zeros(len(codes), np.int64)
    starts[1:] = np.where(codes[:-1] == ord("\n"), index[1:], 0)
    return (index - np.maximum.accumulate(starts)).astype(np.float32)


def line_length(text: str) -> np.ndarray:
    return _per_line(text, lambda line: len(line) - line.endswith("\r"))


def chars_to_line_end(text: str) -> np.ndarray:
    return np.maximum(line_length(text) - pos_in_line(text), 0)


def indent(text: str) -> np.ndarray:
    """Leading whitespace width; a tab advances to the next multiple of 8."""
    return _per_line(text, lambda line: len(line[: len(line) - len(line.lstrip(" \t"))].expandtabs(8)))


def is_space(text: str) -> np.ndarray:
    return _is_any(_codes(text), " \t\n\r\f\v").astype(np.float32)


def after_newline(text: str) -> np.ndarray:
    out = np.zeros(len(text), np.float32)
    out[1:] = _codes(text)[:-1] == ord("\n")
    return out


# ----------------------------------------------------------------------------- registry

FEATURES: dict[str, Feature] = {
    feature.name: feature
    for feature in [
        Feature("in_quote", 'inside prose double quotes "..." or “...”', True, in_quote),
        Feature("in_string", "inside a C/Python string or char literal", True, in_string),
        Feature("in_comment", "inside a C /* */ or // comment, or a Python # comment", True, in_comment),
        Feature("in_if_condition", "inside the condition of an if/elif statement", True, in_if_condition),
        Feature("brace_depth", "nesting depth of { } in code", False, brace_depth),
        Feature("paren_depth", "nesting depth of ( ) and [ ] in code", False, paren_depth),
        Feature("pos_in_line", "0-based column within the line", False, pos_in_line),
        Feature("line_length", "length of the current line, line break excluded", False, line_length),
        Feature("chars_to_line_end", "line_length - pos_in_line, at least 0", False, chars_to_line_end),
        Feature("indent", "leading whitespace width of the line (tab stops of 8)", False, indent),
        Feature("is_space", "the char is ASCII whitespace", True, is_space),
        Feature("after_newline", "the char directly follows a newline", True, after_newline),
    ]
}


def list_features() -> list[Feature]:
    return list(FEATURES.values())


def regex_feature(pattern: str) -> Feature:
    """1 inside any non-empty match of pattern (multiline: ^ and $ work per line)."""
    if not pattern:
        raise ProbeError("empty regex: write re:PATTERN, e.g. re:[0-9]+")
    try:
        regex = re.compile(pattern, re.MULTILINE)
    except re.error as err:
        raise ProbeError(f"invalid regex {pattern!r}: {' '.join(str(err).split())}") from None

    def inside_match(text: str) -> np.ndarray:
        out = np.zeros(len(text), np.float32)
        for match in regex.finditer(text):
            out[match.start() : match.end()] = 1
        return out

    return Feature(f"re:{pattern}", f"inside a match of the regex {pattern!r}", True, inside_match)


def get_feature(name: str) -> Feature:
    if name.startswith("re:"):
        return regex_feature(name[3:])
    if name not in FEATURES:
        known = ", ".join(FEATURES)
        raise ProbeError(f"unknown feature {name!r}; known features: {known}, or re:PATTERN")
    return FEATURES[name]


def compute(name: str, text: str) -> np.ndarray:
    """One float32 value per char of text."""
    values = np.asarray(get_feature(name).function(text), dtype=np.float32)
    assert values.shape == (len(text),), f"feature {name} gave shape {values.shape}"
    return values


def compute_many(names: list[str], text: str) -> dict[str, np.ndarray]:
    """Several features of one text; the code features share one cached lexer pass."""
    return {name: compute(name, text) for name in names}
