"""`probe search` and `probe contexts` on a real tiny recording: formats, errors, output."""

from __future__ import annotations

import json

from probe import search as S
from probe.cli import main
from tests.test_search import PLANTED


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_search_formats(tiny_recording, capsys, tmp_path):
    def search(*args):
        return run_cli(capsys, "search", "--recording", str(tiny_recording.path), *args)

    code, out, _ = search("--feature", "in_comment", "--feature", "brace_depth", "--top", "3",
                          "--kinds", "cell,hidden")  # fmt: skip
    assert code == 0
    header = out.splitlines()[0].split()
    assert header[:5] == ["feature", "rank", "unit", "measure", "score"]
    assert sum(line.split()[0] == "in_comment" for line in out.splitlines()[1:]) == 3
    for form in ("table", "json"):  # nothing to rank: one line that says why, no empty table
        code, out, err = search("--feature", "re:NO SUCH TEXT", "--no-nulls", "--format", form)
        assert (code, out) == (2, "") and err == (
            "probe search: error: re:NO SUCH TEXT matches no char of this text (empty "
            "matches, as of \\b, mark none): no unit can track it\n"
        )
    code, out, err = search("--feature", "re:NO SUCH TEXT", "--feature", "in_comment",
                            "--no-nulls", "--format", "csv")  # fmt: skip
    assert code == 0 and "NO SUCH" not in out and len(out.splitlines()) == 11  # no unranked rows
    assert "warning: re:NO SUCH TEXT matches no char of this text" in err
    code, out, _ = search("--feature", "in_comment", "--format", "csv", "--no-nulls",
                          "--kinds", "cell")  # fmt: skip
    assert code == 0 and out.splitlines()[0].startswith("feature,rank,unit")
    assert len(out.splitlines()) == 11
    target = tmp_path / "s.json"
    code, out, _ = search("--feature", "re:[0-9]+", "--format", "json", "--out", str(target),
                          "--top", "2", "--kinds", "hidden")  # fmt: skip
    rows = json.loads(target.read_text())
    assert code == 0 and len(rows) == 2 and rows[0]["feature"] == "re:[0-9]+"
    again = ("--feature", "in_comment", "--out", str(target))
    code, _, err = search(*again)
    assert code == 2 and "--force" in err and json.loads(target.read_text()) == rows
    code, _, err = search(*again, "--force")
    assert code == 0 and target.read_text().split()[:2] == ["feature", "rank"]


def test_cli_errors_are_one_line(tiny_recording, capsys, tmp_path):
    code, out, err = run_cli(
        capsys, "search", "--recording", str(tiny_recording.path), "--feature", "nope"
    )
    assert code == 2 and len(err.strip().splitlines()) == 1 and "in_comment" in err
    code, _, err = run_cli(
        capsys, "search", "--recording", str(tmp_path / "missing"), "--feature", "in_comment"
    )
    assert code == 2 and len(err.strip().splitlines()) == 1 and "no recording" in err


def test_cli_contexts(tiny_recording, capsys):
    code, out, _ = run_cli(capsys, "contexts", "--recording", str(tiny_recording.path),
                           "--unit", PLANTED, "--top", "3", "--width", "30", "--sign", "absolute")  # fmt: skip
    assert code == 0
    lines = out.rstrip().splitlines()
    assert len(lines) == 4 and "\t" not in out and "⏎" not in out
    marker = lines[0].index("▼")  # each context's peak char is under the marker
    contexts = S.top_contexts(tiny_recording, PLANTED, 3, 30, "absolute")
    visible = str.maketrans({"\n": "↵", "\t": "→", "\r": "␍"})  # as exports draw them
    for line, row in zip(lines[1:], contexts.itertuples(), strict=True):
        assert line[marker] == tiny_recording.text[row.position].translate(visible)
    code, _, err = run_cli(
        capsys, "contexts", "--recording", str(tiny_recording.path), "--unit", "9:cell:0"
    )
    assert code == 2 and "no layer 9" in err
