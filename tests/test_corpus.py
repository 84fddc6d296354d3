"""Corpora: splits, the stdlib default, the shared named corpora and the vocabulary."""

import pytest

from probe.corpus import Vocab, load_corpus, split_by_position
from probe.errors import ProbeError
from tests.conftest import DATA


def test_split_by_position_uses_floor_boundaries():
    splits = split_by_position("x" * 1001, (0.9, 0.05, 0.05))
    assert [len(splits[s]) for s in ("train", "val", "test")] == [900, 50, 51]


def test_stdlib_corpus_is_split_by_file():
    corpus = load_corpus("stdlib")  # the embedded default: real code on every machine
    files = corpus.files
    assert files["train"] and files["val"] and files["test"]
    assert not set(files["train"]) & set(files["test"])
    assert not set(files["train"]) & set(files["val"])
    assert "def " in corpus.split("test") and len(corpus.split("train")) > 10 * len(
        corpus.split("test")
    )
    assert load_corpus("stdlib", (0.9, 0.05, 0.05)).files == files  # deterministic


@pytest.mark.skipif(
    not (DATA / "warpeace.txt").is_file(), reason="../shared/data/warpeace.txt not found"
)
def test_warpeace_counts_match_the_data_readme():
    corpus = load_corpus("warpeace")
    assert sum(len(s) for s in corpus.splits.values()) == 3_258_227  # CRLF and BOM kept
    assert len(corpus.split("train")) == 2_932_404
    assert corpus.sha256 != ""
    paper = load_corpus("warpeace", (0.8, 0.1, 0.1))
    assert len(paper.split("train")) == int(0.8 * 3_258_227)


def test_vocab_unknown_characters_map_to_zero():
    vocab = Vocab.build("aaabbc", min_count=2)
    assert vocab.chars[0] == "\ufffd" and set(vocab.chars[1:]) == {"a", "b"}
    ids = vocab.encode("abcz")
    assert list(ids[:2]) == [vocab.index["a"], vocab.index["b"]] and list(ids[2:]) == [0, 0]
    assert vocab.unknown_count("abcz") == 2
    assert Vocab.from_json(vocab.to_json()).chars == vocab.chars


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"\x00\x01\x02binary", "looks binary"),
        (b"caf\xe9 au lait" * 20, "not UTF-8"),
    ],
)
def test_bad_text_files_get_one_line_errors(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(ProbeError, match=message):
        load_corpus(str(path))


def test_unknown_corpus_and_bad_fractions():
    with pytest.raises(ProbeError, match="unknown corpus 'nope'"):
        load_corpus("nope")
    with pytest.raises(ProbeError, match="fractions"):
        load_corpus("stdlib", (0.5, 0.5, 0.0))
