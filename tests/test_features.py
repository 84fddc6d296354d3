"""Every feature on hand-written text, with the exact expected values written under it.

In the texts '¶' stands for '\\n' and '→' for '\\t', so each row of marks lines up char for char
with its text. Feature rows: '.' is 0, a digit is that value. Lexer rows: '.' code, 's' string,
'c' comment.
"""

from pathlib import Path

import numpy as np
import pytest

from probe.errors import ProbeError
from probe.features import (
    FEATURES,
    MAX_CONDITION,
    compute,
    compute_many,
    get_feature,
    lex,
    list_features,
    looks_like_python,
    regex_feature,
)
from tests.conftest import shared_text

LINUX = Path(__file__).resolve().parents[1].parent / "shared/data/linux.txt"


def text_of(shown: str) -> str:
    return shown.replace("¶", "\n").replace("→", "\t")


def marks(row: str) -> np.ndarray:
    return np.array([0 if c == "." else int(c) for c in row], np.float32)


def check(name: str, shown: str, row: str) -> None:
    assert len(shown) == len(row), "test typo: the row must line up with the text"
    got = compute(name, text_of(shown))
    assert got.dtype == np.float32 and got.shape == (len(shown),)
    np.testing.assert_array_equal(got, marks(row), err_msg=f"{name} on {shown!r}")


def check_kinds(shown: str, row: str, language: str = "auto") -> None:
    assert len(shown) == len(row), "test typo: the row must line up with the text"
    got = "".join(".sc"[k] for k in lex(text_of(shown), language).kind)
    assert got == row, f"lexing {shown!r} ({language})"


def joined(pairs: list[tuple[str, str]]) -> tuple[str, str]:
    """Glue (text, row) line pairs into one text and one row."""
    return "".join(text for text, _ in pairs), "".join(row for _, row in pairs)


# ----------------------------------------------------------------------------- prose quotes


@pytest.mark.parametrize(
    "shown, row",
    [
        ('He said "hi there" and left.', "........1111111111.........."),
        ("a “b” c", "..111.."),
        ('"a¶b" c "d', "11111...11"),  # a plain newline does not reset; unclosed runs to the end
        ('"a¶¶b "c" d', "11....111.."),  # a blank line closes the unbalanced quote
        ('"a¶ →¶b"', "11.....1"),  # a blank line may hold spaces; the stray '"' then opens
        ("x ” “y“ z” w", "....111111.."),  # a stray close is ignored, a second open changes nothing
    ],
)
def test_in_quote(shown, row):
    check("in_quote", shown, row)


def test_in_quote_crlf_blank_line():
    got = compute("in_quote", '"a\r\n\r\nb')
    np.testing.assert_array_equal(got, [1, 1, 0, 0, 0, 0, 0])


# ----------------------------------------------------------------------------- C lexing


@pytest.mark.parametrize(
    "shown, row",
    [
        (
            """x; /* it's "q" */ y = 'a'; // don't¶z""",
            """...cccccccccccccc.....sss..cccccccc..""",
        ),
        ('s = "/* no // */"; t = 1; /* yes */', "....sssssssssssss.........ccccccccc"),
        ("a /* b¶ c */ d // e¶f", "..cccccccccc...cccc.."),  # the '\n' after // is not comment
        (r"""p("a\"b", '\'', '"', "\\");""", r"""..ssssss..ssss..sss..ssss.."""),
        ("""c = 'x;¶y = "ab¶z;""", """............sss..."""),  # an open " ends at the line end
        (r"""s = "a\¶b"; x""", r"""....ssssss..."""),  # backslash-newline continues a string
        ("a /* b", "..cccc"),  # unterminated block comment runs to the end
    ],
)
def test_c_strings_and_comments(shown, row):
    check_kinds(shown, row)


@pytest.mark.parametrize(
    "shown, row",
    [
        (r"""a = '\x41' + L'b' + u8'c' + 'abcd';""", r"""....ssssss....sss.....sss...ssssss."""),
        ("""x = '\\0'; y = '\\'';""", """....ssss......ssss."""),
        ("""x = 'abcde'; y = 1'000;""", "." * 23),  # too long for a char; after a digit
        ("""/* ok */ ta'en 'tis, king's 'x'""", "cccccccc" + "." * 20 + "sss"),
    ],
)
def test_c_char_literals_are_short_and_apostrophes_are_text(shown, row):
    check_kinds(shown, row, language="c")


@pytest.mark.parametrize(
    "shown, row",
    [
        ("""s = rb'x' + f'{y}' + 'it''s'""", """......sss....sssss...sssssss"""),
        ("""if it's 'tis:""", "." * 13),  # after a letter, or never closed: text
        ("""s = 'a long string, closed'""", "...." + "s" * 23),
    ],
)
def test_python_quotes_open_only_closed_literals(shown, row):
    check_kinds(shown, row, language="python")


def test_apostrophes_in_prose_are_not_strings():
    text = shared_text("tinyshakespeare.txt", 200_000)  # lexed as Python: lines end in ':'
    assert compute("in_string", text).mean() < 0.01  # each "ta'en" opened a string: 10%
    assert compute("in_string", text.replace(":\n", ";\n")).mean() < 0.01  # as C


def test_c_preprocessor_lines_are_code_other_line_initial_hashes_are_comments():
    shown, row = joined(
        [
            ('#include "a.h"¶', ".........sssss."),
            ('  # define Q(x) "x" #x ## y // c¶', "................sss.........cccc."),
            ("# stray note¶", "cccccccccccc."),
        ]
    )
    check_kinds(shown, row)


def test_language_rules_c_and_python():
    check_kinds("#x // y", "...cccc", language="c")
    check_kinds("#x // y", "ccccccc", language="python")
    check_kinds("a // b # c", ".......ccc", language="python")
    check_kinds("'''a¶b'''", "." * 9, language="c")  # no triple quotes in C
    check_kinds("'''a¶b'''", "sssssssss", language="python")
    with pytest.raises(ProbeError, match="unknown language"):
        lex("x", "rust")


def test_code_features_through_compute_crlf():
    check("in_comment", "a // b\r¶c", "..1111...")  # neither '\r' nor '\n' is comment
    check("in_string", "a = 'b'\r¶c", "....111...")


# ----------------------------------------------------------------------------- C conditions, depths


@pytest.mark.parametrize(
    "shown, row",
    [
        ("if (a && (b || c)) {", "...111111111111111.."),
        ('} else if(x == ")") y;', ".........1111111111..."),  # a ')' in a string does not close
        ("if (f(x) && g[y]) z;", "...11111111111111..."),
        ("if (a) /* ) */ b(c);", "...111.............."),
        ("if¶ (x¶ && y) z; if (q", "....111111111.......11"),  # unclosed runs to the end
        ("#if (A)¶ifdef (x) notif (y) elif (z) x_if (w)", "." * 45),  # whole words only
        ('/* if (x) */ s = "if (y)";', "." * 26),
        ("if (a { b; }", "...111......"),  # unbalanced: stops before the `{`
        ("if (a; b) c;", "...11......."),  # ... or before a `;`
    ],
)
def test_c_if_condition(shown, row):
    check("in_if_condition", shown, row)


def test_if_condition_is_cut_at_max_length():
    assert compute("in_if_condition", "if (" + "x" * 3000).sum() == MAX_CONDITION
    assert compute("in_if_condition", "if x" + "y" * 3000 + ":\ndef f():\n").sum() == MAX_CONDITION


def test_c_depths():
    shown = "f(a[1], \"(\") { if (x) { g('}'); } /* { */ }"
    check("paren_depth", shown, ".1122111111.......11.....1111..............")
    check("brace_depth", shown, ".............11111111122222222221111111111.")
    check("brace_depth", "} } { ( }", "....1111.")  # a stray closer at depth 0 is ignored


# ----------------------------------------------------------------------------- Python

PYTHON = [  # (text, lexer row, in_if_condition row, brace_depth row)
    ("import re¶", "..........", "..........", ".........."),
    (
        "if a and f(':'):  # it's ok¶",
        "...........sss....ccccccccc.",
        "..11111111111111............",
        "............................",
    ),
    ("    s = '''x¶", "........sssss", ".............", "............."),
    ("'y'¶", "ssss", "....", "...."),
    ("'''¶", "sss.", "....", "...."),
    (
        "elif x[0] == ':' or {1: 2}:¶",
        ".............sss............",
        "....11111111111111111111111.",
        "....................11111...",
    ),
    ("    d = {'a': {}} // 2¶", ".........sss...........", "." * 23, "........11111121......."),
    ("v = a if b else c¶", "." * 18, "." * 18, "." * 18),
    ("#include <x>¶", "." * 13, "." * 13, "." * 13),
    ("# if this comment¶", "c" * 17 + ".", "." * 18, "." * 18),
    ("""s = rb'\\'' + f"{x}"¶""", "......ssss....sssss.", "." * 20, "." * 20),
    ("if (a,¶", ".......", "..11111", "......."),
    ("        b):¶", "............", "11111111111.", "............"),
]


def test_python_is_detected():
    python = "".join(text_of(line[0]) for line in PYTHON)
    assert looks_like_python(python) and looks_like_python(python.replace("\n", "\r\n"))
    body = "    if x:\r\n        y = f(x)\r\n    else:\r\n        y = 0\r\n"  # no def, no import
    assert looks_like_python(body)
    assert looks_like_python("import os\ndef f(x):\n    return x\n")
    assert not looks_like_python("int f(int x) {\n    return x;\n}\n")
    assert not looks_like_python("")


@pytest.mark.parametrize("column, name", [(1, None), (2, "in_if_condition"), (3, "brace_depth")])
def test_python_snippet(column, name):
    shown, row = joined([(line[0], line[column]) for line in PYTHON])
    if name is None:
        check_kinds(shown, row)
    else:
        check(name, shown, row)


def test_python_if_without_colon_stops_at_line_end():
    check("in_if_condition", "if x¶y = 1¶def f():¶", "..11................")


# ----------------------------------------------------------------------------- line features


@pytest.mark.parametrize(
    "name, row",
    [
        ("pos_in_line", ".12.1..12"),
        ("line_length", "22211.333"),
        ("chars_to_line_end", "21.1..321"),
        ("after_newline", "...1.11.."),
    ],
)
def test_line_features(name, row):
    check(name, "ab¶c¶¶def", row)


def test_line_features_crlf():
    text = "ab\r\nc\r\n"
    expected = {
        "pos_in_line": [0, 1, 2, 3, 0, 1, 2],
        "line_length": [2, 2, 2, 2, 1, 1, 1],
        "chars_to_line_end": [2, 1, 0, 0, 1, 0, 0],
        "after_newline": [0, 0, 0, 0, 1, 0, 0],
    }
    for name, values in expected.items():
        np.testing.assert_array_equal(compute(name, text), values, err_msg=name)


def test_indent():
    check("indent", "  a¶→b¶ →c¶    ¶x→y", "2222888888844444...")
    np.testing.assert_array_equal(compute("indent", "\t \tx"), [16, 16, 16, 16])


def test_is_space():
    check("is_space", "a b¶→c", ".1.11.")


# ----------------------------------------------------------------------------- regex, registry


@pytest.mark.parametrize(
    "name, shown, row",
    [
        ("re:[0-9]+", "a12 b3", ".11..1"),
        ("re:^x", "x¶ax¶x", "1....1"),  # MULTILINE: ^ matches at every line start
        ("re:a*", "bab", ".1."),  # empty matches mark nothing
    ],
)
def test_regex_feature(name, shown, row):
    check(name, shown, row)
    feature = get_feature(name)
    assert feature.binary and feature.name == name


@pytest.mark.parametrize(
    "name, message",
    [
        ("re:(", "invalid regex"),
        ("re:", "empty regex"),
        ("re:a{1000000000}", "repeats up to 1,000,000,000 times"),  # 300 GB to compile
        ("re:(ab{1000}){1000}", "repeats up to 1,000,000 times"),
    ],
)
def test_bad_regex_is_one_line_error(name, message):
    with pytest.raises(ProbeError, match=message) as error:
        get_feature(name)
    assert "\n" not in str(error.value)


def test_backtracking_regex_stops_with_one_line_error():
    # (a|aa)+$ before a non-a tries every split of the run: ~2^n steps, seconds at n = 28.
    feature = regex_feature("(a|aa)+$", seconds=0.05)
    with pytest.raises(ProbeError, match="took over 0.05 s") as error:
        feature.function("a" * 60 + "!")  # 2^60 steps: only the time limit ends it
    assert "\n" not in str(error.value)


def test_unknown_feature_lists_known_names():
    with pytest.raises(ProbeError) as error:
        get_feature("in_qoute")
    message = str(error.value)
    assert "in_qoute" in message and "\n" not in message and "re:PATTERN" in message
    assert all(name in message for name in FEATURES)


def test_registry():
    assert [feature.name for feature in list_features()] == list(FEATURES)
    for feature in list_features():
        assert feature.description and "\n" not in feature.description
    assert FEATURES["in_string"].binary and not FEATURES["brace_depth"].binary


@pytest.mark.parametrize("text", ["", "x", 'int f() { return "a"; }\n', "a“b”\r\n\r\n"])
def test_compute_many_shapes(text):
    names = [*FEATURES, "re:a"]
    values = compute_many(names, text)
    assert list(values) == names
    for name, array in values.items():
        assert array.dtype == np.float32 and array.shape == (len(text),), name


# ----------------------------------------------------------------------------- real text


def test_linux_source_sanity():
    if not LINUX.exists():
        pytest.skip(f"corpus not found: {LINUX}")
    with LINUX.open("rb") as file:  # ASCII, so 200 KB is 200,000 chars
        text = file.read(200_000).decode("utf-8")
    values = compute_many(["in_comment", "brace_depth", "in_if_condition"], text)
    assert 0.1 < values["in_comment"].mean() < 0.5
    assert (values["brace_depth"] == 0).any() and values["brace_depth"].max() > 0
    assert 0.005 < values["in_if_condition"].mean() < 0.1


# ----------------------------------------------------------------------------- what a value knows

CODE = (
    "int f(char *s) {\n"
    '    if (s[0] == \'"\' && g("a { b")) /* c */\n'
    "\treturn 'x'; // it's\n"
    '    t = "open;\n'
    '}\n"quoted" "unclosed\n'
)


@pytest.mark.parametrize("feature", list_features(), ids=lambda feature: feature.name)
def test_only_features_said_to_look_ahead_use_the_text_after_a_char(feature):
    """The value at t from text[:t + 2] is the value at t from the whole text, unless the
    description says the feature looks ahead (as the README and `probe features` say). One
    char more than t: a comment is marked from the '/' of its /* or //."""
    full = compute(feature.name, CODE)
    so_far = [compute(feature.name, CODE[: t + 2])[t] for t in range(len(CODE))]
    assert ("(looks ahead)" in feature.description) == (list(full) != so_far)


def test_a_regex_feature_marks_a_whole_match_from_its_first_char():
    assert list(compute("re:ab", "xab")) == [0, 1, 1] and compute("re:ab", "xa")[1] == 0
    assert list(compute("re:c$", "c\r\nc\n")) == [0, 0, 0, 1, 0]  # $ is before '\n' only
    assert list(compute(r"re:c\r?$", "c\r\nc\n")) == [1, 1, 0, 1, 0]
