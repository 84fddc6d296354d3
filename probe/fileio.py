"""Small file helpers shared by every stage: atomic folder writes and safe text reading."""

from __future__ import annotations

import contextlib
import csv
import glob
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from probe.errors import ProbeError, option


@contextlib.contextmanager
def atomic_folder(
    target: str | Path, marker: tuple[str, str], overwrite: bool = False
) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it replaces `target` in one rename.

    A crash or Ctrl-C leaves `target` as it was (old contents or absent), never half-written.
    `overwrite` replaces only what this would write: an empty folder, or one whose JSON file
    marker[0] says "format": marker[1]; never another file or folder that is at `target`.
    """
    target = Path(target)
    if target.exists() and not overwrite:
        raise ProbeError(f"{target} already exists; to replace it, pass {option('overwrite')}")
    if target.exists() and not (target.is_dir() and holds_format(target / marker[0], marker[1])):
        if not target.is_dir() or any(target.iterdir()):
            what = f"not a {marker[1]} folder" if target.is_dir() else "a file"
            raise ProbeError(f"{target} is {what}; refusing to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    old = target.parent / f".{target.name}.old-{os.getpid()}"
    # Leftovers of an earlier write that was interrupted while cleaning up: a non-empty `old`
    # would make the rename below fail.
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)
    # Half-written folders of writes killed outright (kill -9, out of memory), which never
    # cleaned up: a recording's can take gigabytes. A write under way elsewhere is left alone.
    for leftover in target.parent.glob(glob.escape(f".{target.name}.tmp-") + "*"):
        pid = leftover.name.rpartition("-")[2]
        if pid.isdigit() and not running(int(pid)):
            shutil.rmtree(leftover, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        try:
            if target.exists():
                os.replace(target, old)
            os.replace(tmp, target)
        except BaseException:  # e.g. Ctrl-C between the renames: put the old one back
            if old.exists() and not target.exists():
                os.replace(old, target)
            raise
    finally:  # also reached when Ctrl-C lands while the replaced folder is being removed
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def running(pid: int) -> bool:
    """Whether a process with this id runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's
        return True
    return True


def folder_path(value, what: str) -> Path:
    """value as a Path, or a ProbeError saying what was expected: Path(3) or Path(recording)
    is a TypeError, e.g. from a recording given where a checkpoint goes."""
    if not isinstance(value, (str, os.PathLike)):
        raise ProbeError(f"expected {what} folder, got {type(value).__name__} {value!r:.60}")
    return Path(value)


def holds_format(path: Path, name: str) -> bool:
    """Whether path is a JSON object file with "format": name (what probe writes)."""
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("format") == name
    except (OSError, ValueError, AttributeError):
        return False


def save_cache(frame, path: Path) -> None:
    """Write a DataFrame computed from a recording next to it, atomically, so the next call
    reads it; a recording on a read-only disk is simply not cached."""
    temporary = path.with_suffix(f".tmp-{os.getpid()}")
    try:
        path.parent.mkdir(exist_ok=True)
        frame.to_csv(temporary, index=False)
        temporary.replace(path)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)


def append_csv_rows(path: Path, rows: list[dict], fields: list[str]) -> None:
    """Append rows to a CSV file, starting it with its header if it is new."""
    new = not path.exists()
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fields)
        if new:
            writer.writeheader()
        writer.writerows(rows)


def keep_csv_rows(path: Path, keep) -> None:
    """Rewrite a CSV file with only the rows `keep(row)` accepts, atomically (a stop midway
    leaves the old file), and only if it drops one."""
    if not path.exists():
        return
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        rows, fields = list(reader), reader.fieldnames or []
    kept = [row for row in rows if keep(row)]
    if len(kept) < len(rows):
        temporary = path.with_suffix(f".tmp-{os.getpid()}")
        temporary.unlink(missing_ok=True)
        append_csv_rows(temporary, kept, fields)
        temporary.replace(path)


def write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def read_json(path: Path, what: str) -> dict:
    """Read a JSON object, turning every failure into a one-line ProbeError naming `what`."""
    if not path.is_file():
        raise ProbeError(f"{what}: {path} is missing")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ProbeError(f"{what}: {path} is not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise ProbeError(f"{what}: {path} does not hold a JSON object")
    return data


def check_text(text, what: str = "text") -> None:
    """`text` is the text itself: a short line naming a file is a path passed by mistake."""
    if not isinstance(text, str):
        raise ProbeError(f"{what} must be a str, got {type(text).__name__}")
    try:
        is_path = len(text) < 4096 and "\n" not in text and Path(text).is_file()
    except (OSError, ValueError):  # a name too long, or with NUL: not a path
        is_path = False
    if is_path:
        raise ProbeError(
            f"{what} is {text!r}, the name of a file: pass its contents "
            "(probe.fileio.read_text_file reads a file as probe does)"
        )


def read_text_file(path: str | Path) -> str:
    """Read a UTF-8 text file exactly as stored (CRLF and BOM kept, as char-rnn reads bytes).

    Missing, empty, binary and non-UTF-8 files get a one-line ProbeError.
    """
    path = Path(path)
    if not path.exists():
        raise ProbeError(f"no such file: {path}")
    if path.is_dir():
        raise ProbeError(f"{path} is a folder, expected a text file")
    raw = path.read_bytes()
    if not raw:
        raise ProbeError(f"{path} is empty")
    if b"\x00" in raw[:65536]:
        raise ProbeError(f"{path} looks binary (it contains NUL bytes); expected UTF-8 text")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ProbeError(f"{path} is not UTF-8 text (bad byte at offset {error.start})") from None


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
