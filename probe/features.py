"""Per-character features of a text, to hold recorded cells against.

A feature maps a text to one float32 value per character, aligned with model states. Most values
describe the text up to and including character t (what a left-to-right scanner knows after
reading it, but that a comment is marked from the '/' of its /* or //); those whose description
says "looks ahead" also use the rest of t's line, and a regex feature marks a whole match, its
first chars too (LOOKS_AHEAD says which and how). Binary features (0/1) are judged
by AUROC, continuous ones by Pearson r.

The code features (in_string, in_comment, brace/paren depth, in_if_condition) all come from one
lexer, so they agree: a quote inside a comment opens no string, a brace inside a string nests
nothing. Everything is vectorised with numpy or driven by regexes: all built-ins on a 1M-char
text take about half a second.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import regex

from probe.errors import ProbeError
from probe.layout import TAB_STOP

# A user's regex may backtrack for hours (`(\w+\s?)+$` on a long line); the `regex` package
# (re's syntax) takes a time limit and releases the GIL, so a dashboard serving others goes on.
REGEX_SECONDS = 20.0


@dataclass(frozen=True)
class Feature:
    name: str
    description: str  # one line, shown by `probe features`
    binary: bool  # 0/1 features are judged by AUROC, continuous ones by Pearson r
    function: Callable[[str], np.ndarray]


# ----------------------------------------------------------------------------- the lexer

CODE, STRING, COMMENT = 0, 1, 2
LANGUAGES = ("c", "python", "auto")
PREPROCESSOR_WORDS = (
    "include|define|undef|if|ifdef|ifndef|elif|else|endif|pragma|error|warning|line"
)

# Each token is consumed whole; everything between tokens is code. Paint uses the named group's
# span, so a pattern may look at the start of its line first. A backslash escapes any char, a
# newline included (line continuation), and in raw strings too, a quote. A '"' string left open
# stops before its line end (a typo). An apostrophe is far more often prose than code (ta'en,
# king's, 'tis, in text and in code alike), so a "'" opens a string only where a literal can
# start (not right after a letter or digit, but for a prefix like L'x' or rb'x') and only if
# it closes on its line; in C, within a char literal's span: 'a', '\n', '\x41', 'abcd' (C
# allows multi-char constants; 4 chars fill an int).
_DIRECTIVE = rf"\#[ \t]*(?:{PREPROCESSOR_WORDS})\b"
_DOUBLE = r'"[^"\\\r\n]*(?:\\.[^"\\\r\n]*)*"?'
_C_PREFIX = r"(?:(?<!\w)|(?<=\bL)|(?<=\bu)|(?<=\bU)|(?<=\bu8))"
_C_CHAR = r"\\(?:x[0-9A-Fa-f]+|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|[0-7]{1,3}|.)|[^'\\\r\n]"
_PYTHON_PREFIX = r"(?:(?<!\w)|(?<=\b[rRbBuUfFtT])|(?<=\b[rR][bBfFtT])|(?<=\b[bBfFtT][rR]))"
_TOKENS = {
    "block": r"(?P<comment1>/\*.*?(?:\*/|\Z))",
    "slash": r"(?P<comment2>//[^\r\n]*)",
    "directive": rf"^[ \t]*(?P<directive1>{_DIRECTIVE})",
    "tight_directive": rf"^[ \t]*(?P<directive2>\#(?:{PREPROCESSOR_WORDS})\b)",
    "hash": r"(?P<comment3>\#[^\r\n]*)",
    "line_hash": r"^[ \t]*(?P<comment4>\#(?!\#)[^\r\n]*)",
    "triple": r'(?P<string1>"""[^"\\]*(?:(?:\\.|"(?!""))[^"\\]*)*(?:"""|\Z)'
    r"|'''[^'\\]*(?:(?:\\.|'(?!''))[^'\\]*)*(?:'''|\Z))",
    "single": rf"(?P<string2>{_DOUBLE}|{_PYTHON_PREFIX}'[^'\\\r\n]*(?:\\.[^'\\\r\n]*)*')",
    "c_single": rf"(?P<string3>{_DOUBLE}|{_C_PREFIX}'(?:{_C_CHAR}){{1,4}}')",
}
_KIND_OF_GROUP = {"string": STRING, "comment": COMMENT, "directive": CODE}  # by name, digits cut


@dataclass(frozen=True)
class Lexed:
    """What the lexer knows after each char; arrays are read-only because they are cached."""

    kind: np.ndarray  # uint8: CODE, STRING or COMMENT
    python: bool  # whether Python rules were used (decides what an `if` condition is)
    paren: np.ndarray  # depth of ( and [ in code
    brace: np.ndarray  # depth of { in code


def looks_like_python(text: str) -> bool:
    """Cheap guess for language="auto": Python lines end in ':', C lines in ';' or '{'
    (Windows line ends too)."""
    text = "\n" + text.replace("\r\n", "\n")
    python = text.count("\ndef ") + text.count("\nimport ") + text.count(":\n")
    c = text.count(";\n") + text.count("{\n")
    return python > c


@functools.lru_cache(maxsize=8)
def _token_regex(language: str, python: bool) -> re.Pattern:
    if language == "c":
        names = ["block", "slash", "c_single"]
    elif language == "python":
        names = ["hash", "triple", "single"]
    elif python:  # auto, Python-like: `#include` is code, `# if the cache...` a comment
        names = ["tight_directive", "hash", "triple", "single"]
    else:  # auto, C-like: a line-initial '#' is a directive or a comment; `#x`, `##` operators
        names = ["block", "slash", "directive", "line_hash", "triple", "c_single"]
    return re.compile("|".join(_TOKENS[name] for name in names), re.DOTALL | re.MULTILINE)


@functools.lru_cache(maxsize=2)
def lex(text: str, language: str = "auto") -> Lexed:
    """Split text into code, strings and comments: one regex pass that jumps from code to the
    next string or comment opener and consumes that token whole (a three-state scanner)."""
    if language not in LANGUAGES:
        raise ProbeError(f"unknown language {language!r}; expected one of {', '.join(LANGUAGES)}")
    python = language == "python" or (language == "auto" and looks_like_python(text))
    spans = [
        (match.lastgroup, match.span(match.lastgroup))
        for match in _token_regex(language, python).finditer(text)
    ]
    kind = np.zeros(len(text), np.uint8)
    for token_kind in (STRING, COMMENT):
        starts_ends = [span for group, span in spans if _KIND_OF_GROUP[group[:-1]] == token_kind]
        kind[_cover(len(text), *np.array(starts_ends, np.int64).reshape(-1, 2).T)] = token_kind
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


# Not `#if (` nor `#  if (` (a directive), `elif (`, `notif (`.
_C_IF = regex.compile(r"(?<!^[ \t]*#[ \t]*)(?<![\w#])if\s*\(", regex.MULTILINE)
_PYTHON_IF = re.compile(r"^[ \t]*(?:el)?if\b", re.MULTILINE)  # statements only, not `a if b`
MAX_CONDITION = 2000  # chars; bounds the damage of an unbalanced bracket


def _cover(n: int, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Boolean mask of length n, set on every [start, end); spans may overlap, ends may pass n."""
    ends = np.minimum(ends, n)
    edges = np.bincount(starts, minlength=n + 1) - np.bincount(ends, minlength=n + 1)
    return np.cumsum(edges[:n]) > 0


def _next_at_depth(
    mask: np.ndarray, depth: np.ndarray, starts: np.ndarray, depths: np.ndarray | int
) -> np.ndarray:
    """For each (start, depth): the first index >= start where mask is set at that depth, or
    len(mask). One searchsorted over (depth, index) keys: no Python loop over conditions."""
    n = len(mask)
    where = np.flatnonzero(mask)
    keys = np.sort(depth[where].astype(np.int64) * (n + 1) + where)
    keys = np.append(keys, np.iinfo(np.int64).max)
    found = keys[np.searchsorted(keys, depths * (n + 1) + starts)]
    return np.where(found // (n + 1) == depths, found % (n + 1), n)


def in_if_condition(text: str) -> np.ndarray:
    """C: the parens after `if`, inclusive; if unbalanced, up to before a `;` or `{`.
    Python: after a statement's `if`/`elif` keyword through the ':' outside brackets (or up to
    a line end outside brackets). Either is cut at MAX_CONDITION chars."""
    lexed, codes, n = lex(text), _codes(text), len(text)
    code = lexed.kind == CODE
    # Depth moves by at most 1 per char, so "first drop below d" is "first char at depth d - 1".
    if not lexed.python:
        starts = np.array([m.end() - 1 for m in _C_IF.finditer(text) if code[m.start()]], np.int64)
        starts = starts[code[starts]]  # the '(' itself must be code too
        level = lexed.paren[starts].astype(np.int64) - 1
        closes = _next_at_depth(code & _is_any(codes, ")]"), lexed.paren, starts + 1, level) + 1
        breaks = _next_at_depth(code & _is_any(codes, ";{"), np.zeros(n, np.int64), starts, 0)
        ends = np.minimum(closes, breaks)
    else:
        # A statement's `if` is outside brackets (inside: a comprehension's or an `a if b else c`)
        depth = (lexed.paren + lexed.brace).astype(np.int64)
        keywords = [m.end() for m in _PYTHON_IF.finditer(text) if code[m.end() - 1]]
        starts = np.array([end for end in keywords if depth[end - 1] == 0], np.int64)
        continued = np.append(False, codes[:-1] == ord("\\"))
        colon = code & (codes == ord(":")) & np.append(codes[1:] != ord("="), True)  # not :=
        colons = _next_at_depth(colon, depth, starts, 0) + 1
        newlines = _next_at_depth(code & (codes == ord("\n")) & ~continued, depth, starts, 0)
        ends = np.minimum(colons, newlines)
    return _cover(n, starts, np.minimum(ends, starts + MAX_CONDITION)).astype(np.float32)


# ----------------------------------------------------------------------------- prose features

_QUOTE_EVENT = re.compile(r'["“”]|\r?\n[ \t\r]*\n')  # a quote char, or a blank line


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
    """Leading whitespace width; a tab advances to the next tab stop, as figures draw it."""
    return _per_line(text, lambda line: len(re.match(r"[ \t]*", line)[0].expandtabs(TAB_STOP)))


def is_space(text: str) -> np.ndarray:
    return _is_any(_codes(text), " \t\n\r\f\v").astype(np.float32)


def after_newline(text: str) -> np.ndarray:
    out = np.zeros(len(text), np.float32)
    out[1:] = _codes(text)[:-1] == ord("\n")
    return out


# ----------------------------------------------------------------------------- registry

LOOKS_AHEAD = (  # what "(looks ahead)" in a description means
    "A value describes the text up to and including its char, except where it looks ahead: "
    "line_length and chars_to_line_end know where the line ends, indent is the whole line's "
    "from its first char, a ' is a string only if it closes on its line, and re:PATTERN marks "
    "a whole match."
)
REGEX_DESCRIPTION = "1 on every char of a match, its first chars too (so it looks ahead)"
REGEX_NOTE = (
    "re:PATTERN uses the `regex` module (the syntax of Python's re) with MULTILINE: ^ and $ "
    "match at every line's start and end. $ matches only before '\\n', so in CRLF text a "
    "line's end is \\r?$ (or (?=\\r?$) to leave the '\\r' out); . matches '\\r'."
)

FEATURES: dict[str, Feature] = {
    feature.name: feature
    for feature in [
        Feature("in_quote", 'inside prose double quotes "..." or “...”', True, in_quote),
        Feature(
            "in_string", "inside a C/Python string or char literal (looks ahead)", True, in_string
        ),
        Feature(
            "in_comment", "inside a C /* */ or // comment, or a Python # comment", True, in_comment
        ),
        Feature(
            "in_if_condition", "inside the condition of an if/elif statement", True, in_if_condition
        ),
        Feature("brace_depth", "nesting depth of { } in code", False, brace_depth),
        Feature("paren_depth", "nesting depth of ( ) and [ ] in code", False, paren_depth),
        Feature("pos_in_line", "0-based column within the line", False, pos_in_line),
        Feature(
            "line_length", "line length, line break excluded (looks ahead)", False, line_length
        ),
        Feature(
            "chars_to_line_end", "chars left on the line (looks ahead)", False, chars_to_line_end
        ),
        Feature("indent", f"leading blanks, tab stops of {TAB_STOP} (looks ahead)", False, indent),
        Feature("is_space", "the char is ASCII whitespace", True, is_space),
        Feature("after_newline", "the char directly follows a newline", True, after_newline),
    ]
}


def list_features() -> list[Feature]:
    return list(FEATURES.values())


REPEAT = re.compile(r"(?<!\\)\{(\d*),?(\d*)\}")  # {n} {n,} {n,m} {,m}: not \{n}
MAX_REPEATS = 100_000


def regex_feature(pattern: str, seconds: float | None = None) -> Feature:
    """1 inside any non-empty match of pattern (REGEX_NOTE says how it is matched).

    Matching a text stops with a ProbeError after `seconds` (default REGEX_SECONDS).
    """
    seconds = REGEX_SECONDS if seconds is None else seconds
    if not pattern:
        raise ProbeError("empty regex: write re:PATTERN, e.g. re:[0-9]+")
    # a{n} compiles to n copies of a (~300 bytes each): a{1000000000} would take 300 GB.
    counts = [int(most or least) for least, most in REPEAT.findall(pattern) if least or most]
    if math.prod(counts) > MAX_REPEATS:
        raise ProbeError(
            f"regex {pattern!r} repeats up to {math.prod(counts):,} times "
            f"(counts in braces multiply); at most {MAX_REPEATS:,}"
        )
    try:
        compiled = regex.compile(pattern, regex.MULTILINE | regex.VERSION0)
    except regex.error as err:
        raise ProbeError(f"invalid regex {pattern!r}: {' '.join(str(err).split())}") from None

    def inside_match(text: str) -> np.ndarray:
        out = np.zeros(len(text), np.float32)
        try:
            for match in compiled.finditer(text, timeout=seconds):
                out[match.start() : match.end()] = 1
        except TimeoutError:
            raise ProbeError(
                f"regex '{pattern}' took over {seconds:g} s on {len(text):,} chars "
                "(nested repeats like (a+)+ backtrack without end); simplify it"
            ) from None
        return out

    description = f"{REGEX_DESCRIPTION}: {pattern!r}"
    return Feature(f"re:{pattern}", description, True, inside_match)


def get_feature(name: str) -> Feature:
    if name.startswith("re:"):
        return regex_feature(name[3:])
    if name not in FEATURES:
        known = ", ".join(FEATURES)
        shown = repr(name) if len(name) <= 60 else f"{name[:60]!r}... ({len(name):,} chars)"
        raise ProbeError(f"unknown feature {shown}; known features: {known}, or re:PATTERN")
    return FEATURES[name]


def compute(name: str, text: str) -> np.ndarray:
    """One float32 value per char of text."""
    if not isinstance(text, str):
        raise ProbeError(f"features are computed on a str, not a {type(text).__name__}")
    values = np.asarray(get_feature(name).function(text), dtype=np.float32)
    assert values.shape == (len(text),), f"feature {name} gave shape {values.shape}"
    return values


def compute_many(names: list[str], text: str) -> dict[str, np.ndarray]:
    """Several features of one text; the code features share one cached lexer pass."""
    return {name: compute(name, text) for name in names}
