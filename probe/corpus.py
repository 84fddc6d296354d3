"""Text sources, splits and the character vocabulary.

A corpus spec is one of:
  - `stdlib`: the .py files of the running interpreter's standard library (the embedded
    default: real code on every machine, no download), split by file so held-out files are
    never seen in training;
  - a name from the shared data folder: `warpeace`, `linux`, `tinyshakespeare`
    (split by position, read so character counts match the data README);
  - a path to a text file (split by position) or a folder (its files matching `glob`,
    split by file).
"""

from __future__ import annotations

import hashlib
import os
import sys
import sysconfig
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from probe.errors import ProbeError
from probe.fileio import holds_format, read_text_file, sha256_text

NAMED = {"warpeace": "warpeace.txt", "linux": "linux.txt", "tinyshakespeare": "tinyshakespeare.txt"}
SPLITS = ("train", "val", "test")
DEFAULT_FRACTIONS = (0.90, 0.05, 0.05)
PROBE_FOLDERS = (  # what probe writes: (marker file, its format, what the folder is)
    ("config.json", "probe-checkpoint", "checkpoint"),
    ("best/config.json", "probe-checkpoint", "training run"),
    ("manifest.json", "probe-recording", "recording"),
)
STDLIB_SKIP = {"site-packages", "test", "tests", "idlelib", "lib2to3", "__pycache__"}


@dataclass
class Corpus:
    """A text split three ways. `sha256` identifies the whole source text."""

    name: str
    splits: dict[str, str]
    sha256: str
    fractions: tuple[float, float, float]
    description: str = ""
    files: dict[str, list[str]] = field(default_factory=dict)

    def split(self, name: str) -> str:
        if name not in self.splits:
            raise ProbeError(f"unknown split {name!r}; choose one of {', '.join(SPLITS)}")
        return self.splits[name]


def data_dirs() -> list[Path]:
    """Where named corpora are looked for: $PROBE_DATA, then ../shared/data beside the repo."""
    dirs = [Path(os.environ["PROBE_DATA"])] if os.environ.get("PROBE_DATA") else []
    repo = Path(__file__).resolve().parents[1]
    return dirs + [repo.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"]


def find_named(name: str) -> Path | None:
    for folder in data_dirs():
        if (folder / NAMED[name]).is_file():
            return folder / NAMED[name]
    return None


def split_by_position(text: str, fractions: tuple[float, float, float]) -> dict[str, str]:
    """First 90 % train, next 5 % val, last 5 %: floor(f * N) boundaries, no shuffling."""
    train_end = int(fractions[0] * len(text))
    val_end = int((fractions[0] + fractions[1]) * len(text))
    return {"train": text[:train_end], "val": text[train_end:val_end], "test": text[val_end:]}


def split_files(paths: list[Path], root: Path, fractions) -> dict[str, list[Path]]:
    """Assign each file to a split by a hash of its relative path: stable across machines."""
    assigned: dict[str, list[Path]] = {split: [] for split in SPLITS}
    for path in sorted(paths, key=lambda p: p.relative_to(root).as_posix()):
        digest = hashlib.sha256(path.relative_to(root).as_posix().encode()).digest()
        bucket = int.from_bytes(digest[:8], "big") / 2**64
        split = (
            "train" if bucket < fractions[0] else "val" if bucket < sum(fractions[:2]) else "test"
        )
        assigned[split].append(path)
    return assigned


def load_folder(root: Path, paths: list[Path], name: str, fractions, description: str) -> Corpus:
    by_split = split_files(paths, root, fractions)
    splits, digest = {}, hashlib.sha256()
    for split in SPLITS:
        parts = []
        for path in by_split[split]:
            try:
                parts.append(path.read_bytes().decode("utf-8"))
            except (UnicodeDecodeError, OSError):
                continue  # binary or unreadable files are not text: skip them
        splits[split] = "".join(parts)
    for path in sorted(paths):
        digest.update(path.relative_to(root).as_posix().encode())
    if not splits["train"]:
        raise ProbeError(f"corpus {name}: no readable UTF-8 text found")
    for split in SPLITS:
        digest.update(sha256_text(splits[split]).encode())
    files = {s: [p.relative_to(root).as_posix() for p in by_split[s]] for s in SPLITS}
    return Corpus(name, splits, digest.hexdigest(), fractions, description, files)


def stdlib_files() -> tuple[Path, list[Path]]:
    root = Path(sysconfig.get_paths()["stdlib"])
    files = [
        p for p in root.rglob("*.py") if not STDLIB_SKIP.intersection(p.relative_to(root).parts)
    ]
    return root, files


def load_corpus(
    spec: str, fractions: tuple[float, float, float] = DEFAULT_FRACTIONS, glob: str = "**/*"
) -> Corpus:
    """Resolve a corpus spec (see module docstring) into its train/val/test texts."""
    if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-6:
        raise ProbeError(
            f"split fractions must be three positive numbers summing to 1, got {fractions}"
        )
    if spec == "stdlib":
        root, files = stdlib_files()
        version = ".".join(map(str, sys.version_info[:3]))
        description = f"{len(files)} .py files of the Python {version} standard library"
        return load_folder(root, files, "stdlib", fractions, description)
    if spec in NAMED:
        path = find_named(spec)
        if path is None:
            where = ", ".join(str(d) for d in data_dirs())
            raise ProbeError(f"corpus {spec!r} not found (looked for {NAMED[spec]} in {where})")
        text = read_text_file(path)
        return Corpus(
            spec,
            split_by_position(text, fractions),
            sha256_text(text),
            fractions,
            f"{NAMED[spec]} of the shared data folder",
        )
    path = Path(spec)
    for marker, file_format, what in PROBE_FOLDERS:  # their JSON and text are no corpus to learn
        if holds_format(path / marker, file_format):
            raise ProbeError(f"{spec} is a {what}, not a corpus")
    if path.is_dir():
        files = [p for p in path.glob(glob) if p.is_file()]
        if not files:
            raise ProbeError(f"folder {path} has no files matching {glob!r}")
        return load_folder(
            path, files, path.name, fractions, f"{len(files)} files of folder {path.name}"
        )
    if not path.exists():
        known = ", ".join(["stdlib", *NAMED])
        raise ProbeError(f"unknown corpus {spec!r}: not a file or folder, nor one of {known}")
    text = read_text_file(path)
    if len(text) < 100:
        raise ProbeError(f"{path} is too short to split into train/val/test ({len(text)} chars)")
    return Corpus(
        path.name,
        split_by_position(text, fractions),
        sha256_text(text),
        fractions,
        f"file {path.name}",
    )


def check_held_out(corpus: Corpus) -> None:
    """Training measures its loss on the val and test splits: with under 2 chars in one there
    is nothing to predict, and its loss of 0 would pass for a perfect model."""
    for split in ("val", "test"):
        if len(corpus.split(split)) < 2:
            how = "by file: add files, or" if corpus.files else "by position:"
            raise ProbeError(
                f"corpus {corpus.name} has no {split} text (it is split {how} "
                "give val and test a larger share with --split)"
            )


def check_found_from_here(spec: str, run: str) -> None:
    """A run keeps its corpus as it was typed, a relative path read from the folder the run
    began in: resumed from another folder, say how to name it rather than 'unknown corpus'."""
    if spec != "stdlib" and spec not in NAMED and not Path(spec).exists():
        raise ProbeError(
            f"{run} trained on {spec}, which is not there from this folder (a relative path "
            "is read from the current folder); name it with --corpus"
        )


UNKNOWN = "\ufffd"


@dataclass
class Vocab:
    """Characters <-> ids. Id 0 is the unknown character: anything unseen in training."""

    chars: list[str]

    def __post_init__(self):
        self.index = {char: i for i, char in enumerate(self.chars)}

    @classmethod
    def build(cls, text: str, min_count: int = 1) -> Vocab:
        """Keep characters seen at least `min_count` times, most frequent first."""
        counts = Counter(text)
        kept = sorted(
            (c for c, n in counts.items() if n >= min_count), key=lambda c: (-counts[c], c)
        )
        return cls([UNKNOWN] + [c for c in kept if c != UNKNOWN])

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """int64 ids; characters outside the vocabulary map to 0 (count them with `unknown`)."""
        index = self.index
        return np.fromiter((index.get(c, 0) for c in text), dtype=np.int64, count=len(text))

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)

    def unknown_count(self, text: str) -> int:
        return sum(1 for c in text if c not in self.index)

    def to_json(self) -> dict:
        return {"chars": self.chars, "unknown_id": 0}

    @classmethod
    def from_json(cls, data: dict) -> Vocab:
        chars = data.get("chars")
        if not isinstance(chars, list) or not chars or not all(isinstance(c, str) for c in chars):
            raise ProbeError("vocab.json is malformed (expected a list of characters)")
        return cls(chars)
