"""The on-disk `Recording`: what every cell did on every character of a text.

A recording is a folder:

    manifest.json           format, model config, checkpoint id, text sha256, chars, arrays
    text.txt                the text, UTF-8, exactly as recorded (CRLF kept)
    L{layer}_{kind}.npy     float16, shape (chars, units): the state after reading char t
    logprob.npy             float32, shape (chars,): log p(char t+1 | text up to t); NaN last
    init/                   optional twin recording of a random-init model (search's null)

Arrays are memory-mapped on open, so a 1M-character recording of a big model opens in
milliseconds and costs no RAM until read.
"""

from __future__ import annotations

import math
import numbers
import os
import queue
import threading
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from probe.errors import ProbeError
from probe.fileio import folder_path, read_json, sha256_text, write_json
from probe.units import Unit

FORMAT = "probe-recording"
FORMAT_VERSION = 1


def array_name(layer: int, kind: str) -> str:
    return f"L{layer}_{kind}.npy"


@dataclass
class Recording:
    """A recording opened lazily; arrays are memory-mapped float16 of shape (chars, units)."""

    path: Path
    manifest: dict
    text: str
    _arrays: dict = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, recording: Recording | str | Path) -> Recording:
        """The recording itself, or the one opened from its folder: what the library's
        functions take."""
        return recording if isinstance(recording, Recording) else cls.open(recording)

    @classmethod
    def open(cls, path: str | Path) -> Recording:
        """Open a recording folder, checking the manifest against the files on disk."""
        path = folder_path(path, "a recording")
        if not path.is_dir():
            raise ProbeError(f"no recording at {path} (expected a folder made by `probe record`)")
        checkpoint = (path / "config.json").exists() or (path / "best" / "config.json").exists()
        if checkpoint and not (path / "manifest.json").exists():
            raise ProbeError(f"{path} is a checkpoint, not a recording (make one: probe record)")
        manifest = read_json(path / "manifest.json", "recording")
        if manifest.get("format") != FORMAT:
            raise ProbeError(f"{path} is not a probe recording (manifest format is not {FORMAT})")
        if int(manifest.get("format_version", 0)) > FORMAT_VERSION:
            raise ProbeError(f"{path} was written by a newer probe; upgrade to open it")
        text_path = path / "text.txt"
        if not text_path.is_file():
            raise ProbeError(f"recording {path} has no text.txt")
        text = text_path.read_bytes().decode("utf-8", errors="replace")
        if len(text) != manifest["chars"]:
            raise ProbeError(
                f"recording {path}: text has {len(text)} chars, manifest says {manifest['chars']}"
            )
        recording = cls(path=path, manifest=manifest, text=text)
        for entry in manifest["arrays"]:
            recording._check_array(entry)
        return recording

    def _check_array(self, entry: dict) -> None:
        file = self.path / entry["file"]
        if not file.is_file():
            raise ProbeError(f"recording {self.path}: array {entry['file']} is missing")
        try:
            array = np.load(file, mmap_mode="r")
        except (ValueError, OSError) as error:
            raise ProbeError(
                f"recording {self.path}: {entry['file']} is corrupt ({error})"
            ) from None
        expected = (self.chars, entry["units"])
        if array.shape != expected:
            raise ProbeError(
                f"recording {self.path}: {entry['file']} has shape {array.shape}, "
                f"manifest says {expected}"
            )
        self._arrays[(entry["layer"], entry["kind"])] = array

    def __repr__(self) -> str:
        """Short: the dataclass's own repr printed the whole text (a notebook cell's output)."""
        config = self.config
        model = f"{config['cell']} {config['layers']}x{config['hidden']}"
        return f"<Recording {str(self.path)!r}: {self.chars:,} chars of {model}>"

    @property
    def chars(self) -> int:
        return int(self.manifest["chars"])

    @property
    def config(self) -> dict:
        """The model config of the checkpoint that made this recording."""
        return self.manifest["config"]

    @property
    def name(self) -> str:
        return self.manifest.get("name") or self.path.name

    @property
    def layer_kinds(self) -> list[tuple[int, str]]:
        """The recorded (layer, kind) pairs, in manifest order."""
        return list(self._arrays)

    def units_in(self, layer: int, kind: str) -> int:
        return self.array(layer, kind).shape[1]

    def all_units(self) -> list[Unit]:
        return [Unit(l, k, i) for l, k in self.layer_kinds for i in range(self.units_in(l, k))]

    def array(self, layer: int, kind: str) -> np.ndarray:
        """The memory-mapped float16 array (chars, units) for one layer and kind."""
        try:
            return self._arrays[(layer, kind)]
        except KeyError:
            have = ", ".join(f"{l}:{k}" for l, k in self.layer_kinds)
            raise ProbeError(f"recording has no layer {layer} kind {kind!r} (has {have})") from None

    def unit_array(self, unit: Unit) -> np.ndarray:
        """The array that holds a unit, once its index is checked: a negative one would read
        another unit, counted from the end."""
        array = self.array(unit.layer, unit.kind)
        if not isinstance(unit.index, numbers.Integral) or not 0 <= unit.index < array.shape[1]:
            raise ProbeError(
                f"unit {unit}: index out of range (layer has {array.shape[1]} units, "
                f"0 to {array.shape[1] - 1})"
            )
        return array

    def unit(self, unit: str | Unit, start: int = 0, stop: int | None = None) -> np.ndarray:
        """One unit's values as float32, optionally for characters [start, stop)."""
        unit = Unit.parse(unit)
        return np.asarray(self.unit_array(unit)[start:stop, unit.index], dtype=np.float32)

    @cached_property
    def logprob(self) -> np.ndarray:
        """log p(next char) per character (float32, NaN at the last character)."""
        return np.load(self.path / "logprob.npy", mmap_mode="r")

    def loss_bits(self) -> np.ndarray:
        """Each char's surprise in bits, -log2 p(char t | text before t) (NaN at char 0)."""
        bits = np.empty(self.chars, np.float32)  # filled in place: no float64 copy
        bits[0] = np.nan
        np.divide(self.logprob[:-1], np.float32(-math.log(2)), out=bits[1:])
        return bits

    @cached_property
    def init_twin(self) -> Recording | None:
        """The random-init twin recording (same shape, same text prefix), if recorded."""
        twin = self.path / "init"
        return Recording.open(twin) if twin.is_dir() else None


class RecordingWriter:
    """Preallocated float16 memmaps filled chunk by chunk; the manifest is written last."""

    def __init__(self, folder: Path, text: str, shapes: dict[tuple[int, str], int]):
        self.folder = folder
        self.text = text
        self.arrays = {
            key: np.lib.format.open_memmap(
                folder / array_name(*key), mode="w+", dtype=np.float16, shape=(len(text), units)
            )
            for key, units in shapes.items()
        }
        self.logprob = np.lib.format.open_memmap(
            folder / "logprob.npy", mode="w+", dtype=np.float32, shape=(len(text),)
        )
        self.logprob[:] = np.nan
        for array in (*self.arrays.values(), self.logprob):
            reserve(Path(array.filename), array.offset + array.nbytes)

    def finish(self, manifest: dict) -> dict:
        """Flush arrays, write text and manifest; returns the full manifest."""
        for array in self.arrays.values():
            array.flush()
        self.logprob.flush()
        with open(self.folder / "text.txt", "w", encoding="utf-8", newline="") as handle:
            handle.write(self.text)
        full = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "chars": len(self.text),
            "text_sha256": sha256_text(self.text),
            **manifest,
            "arrays": [
                {"layer": l, "kind": k, "units": a.shape[1], "file": array_name(l, k)}
                for (l, k), a in self.arrays.items()
            ],
        }
        write_json(self.folder / "manifest.json", full)
        return full


def write_at(fd: int, data, offset: int) -> None:
    """os.pwrite where the OS has it; else seek and write (then only one thread may use fd)."""
    if hasattr(os, "pwrite"):
        os.pwrite(fd, data, offset)
    else:
        os.lseek(fd, offset, os.SEEK_SET)
        os.write(fd, data)


def address(array: np.ndarray) -> int:
    """Where an array's data starts: how `StreamWriter` knows a buffer passed again."""
    return array.__array_interface__["data"][0]


def reserve(path: Path, size: int) -> None:
    """Allocate the file's blocks now: a full disk fails here, with a clear message, not
    midway; and writes into allocated blocks cost less than growing the file."""
    if not hasattr(os, "posix_fallocate"):  # macOS, Windows: blocks are allocated as written
        return
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as error:
        raise ProbeError(f"no room for the recording in {path.parent} ({error.strerror})") from None
    finally:
        os.close(fd)


class StreamWriter:
    """Writes (streams, steps, ...) chunks into a recording's (chars, ...) arrays.

    Stream s covers rows [s * segment, (s + 1) * segment) of the text (the last one may be
    shorter), so each stream's part of a chunk is one contiguous run of rows in each file:
    one `os.pwrite` per stream per array, done by background threads while the caller
    computes the next chunk (pwrite releases the GIL; writing through the memmap instead
    page-faults on every new page and costs about as much as the compute). One thread when
    the CPU also computes; several when a GPU does and copying into the page cache is the
    bottleneck. The kernel serialises writes to one file (its inode lock), so each thread
    takes whole chunks, and chunks of different arrays are written side by side.
    Chunks may finish out of order: before refilling a buffer it passed to `write`, the
    caller calls `wait_until_written(buffer)`. `close` waits for every write.
    """

    def __init__(self, chars: int, segment: int, pending: int = 8, workers: int = 1):
        self.chars, self.segment, self.pending = chars, segment, pending
        self.files: dict[str, int] = {}
        self.jobs: queue.Queue = queue.Queue(maxsize=pending)
        self.reading: dict[int, threading.Event] = {}  # buffer address -> its last write done
        self.error: Exception | None = None
        workers = workers if hasattr(os, "pwrite") else 1  # seek + write would race
        self.threads = [threading.Thread(target=self._work, daemon=True) for _ in range(workers)]
        for thread in self.threads:
            thread.start()

    def write(self, array: np.memmap, chunk: np.ndarray, column: int, streams=None) -> int:
        """chunk (streams, steps, ...) covers columns [column, column + steps) of the
        streams numbered in `streams` (default 0, 1, ...), one row each.

        Returns the number of rows written (padding past the text's end is dropped)."""
        if self.error:
            raise ProbeError(f"could not write the recording: {self.error}")
        done = self.reading[address(chunk)] = threading.Event()
        chunk = np.ascontiguousarray(chunk)
        steps = min(chunk.shape[1], self.segment - column)
        row_bytes = chunk[0, 0].nbytes
        fd = self.files.get(array.filename)
        if fd is None:
            flags = os.O_WRONLY | getattr(os, "O_BINARY", 0)
            fd = self.files[array.filename] = os.open(array.filename, flags)
        pieces, written = [], 0
        for index, stream in enumerate(range(len(chunk)) if streams is None else streams):
            start = int(stream) * self.segment + column
            rows = min(steps, self.chars - start)
            if rows <= 0:
                continue
            pieces.append((array.offset + start * row_bytes, chunk[index, :rows]))
            written += rows
        self.jobs.put((fd, pieces, done))
        return written

    def wait_until_written(self, buffer: np.ndarray) -> None:
        """Return once no queued or running write reads `buffer` (call before refilling it)."""
        done = self.reading.pop(address(buffer), None)
        if done is not None:
            done.wait()

    def _work(self) -> None:
        while (job := self.jobs.get()) is not None:
            fd, pieces, done = job
            try:
                for offset, piece in pieces:
                    write_at(fd, piece, offset)
            except Exception as error:  # noqa: BLE001 -- reported by write() and close()
                self.error = error
            finally:
                done.set()

    def close(self) -> None:
        """Wait for every write; raise if one failed."""
        for _ in self.threads:
            self.jobs.put(None)
        for thread in self.threads:
            thread.join()
        for fd in self.files.values():
            os.close(fd)
        self.files.clear()
        if self.error:
            raise ProbeError(f"could not write the recording: {self.error}")
