"""Feature storage: one contiguous (total_frames, dim) array per split, memory-mapped for training.

A `FeatureSet` folder holds
    features.npy   (total_T, D) float16 or float32, all utterances concatenated in order
    lengths.npy    (N,) int64, frames per utterance
    utt_ids.txt    one utterance id per line, same order
    meta.json      dim, dtype, counts and whatever the writer was given (frontend config, ...)

`meta.json` is written last, so a folder without it is an interrupted write, never a short feature set.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np

# A fixed-size .npy header lets the writer stream rows and patch the final shape in place at close().
# 256 bytes is a multiple of 64 (the .npy alignment) and holds any shape dict we can reach.
_HEADER_BYTES = 256
_DTYPES = {"float16": np.float16, "float32": np.float32}


def _npy_header(dtype: np.dtype, shape: tuple[int, int]) -> bytes:
    """A version 1.0 .npy header padded to `_HEADER_BYTES` (the format numpy documents in numpy.lib.format)."""
    fields = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": shape}
    text = repr(fields)
    magic = b"\x93NUMPY\x01\x00"
    body_len = _HEADER_BYTES - len(magic) - 2
    body = text.encode("latin1").ljust(body_len - 1, b" ") + b"\n"
    if len(body) != body_len:
        raise ValueError(f"shape {shape} does not fit a {_HEADER_BYTES}-byte .npy header")
    return magic + struct.pack("<H", body_len) + body


class FeatureSetError(ValueError):
    """A feature folder that cannot be read; the message names the folder and the fix."""


class FeatureSet:
    """Read-only view of a stored feature set.

    Attributes:
        utt_ids: list[str] (N)
        lengths: np.ndarray (N,) int64, frames per utterance
        offsets: np.ndarray (N,) int64, first row of each utterance in `features`
        dim: int, feature dimension D
        meta: dict, the writer's metadata (meta.json)
    """

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        meta_path = self.directory / "meta.json"
        if not meta_path.is_file():
            raise FeatureSetError(
                f"{self.directory}: no meta.json; not a feature set, or its writing was interrupted (rerun extraction)"
            )
        self.meta: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8"))
        self.lengths = np.load(self.directory / "lengths.npy").astype(np.int64)
        self.utt_ids = (self.directory / "utt_ids.txt").read_text(encoding="utf-8").split("\n")[: len(self.lengths)]
        if len(self.utt_ids) != len(self.lengths):
            raise FeatureSetError(f"{self.directory}: {len(self.utt_ids)} ids but {len(self.lengths)} lengths")
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)
        self.dim = int(self.meta["dim"])
        self._features: np.ndarray | None = None
        self._index: dict[str, int] | None = None

    @property
    def features(self) -> np.ndarray:
        """All frames, (total_T, D), memory-mapped (opened on first use so forked workers share nothing)."""
        if self._features is None:
            self._features = np.load(self.directory / "features.npy", mmap_mode="r")
            if self._features.shape != (int(self.lengths.sum()), self.dim):
                raise FeatureSetError(
                    f"{self.directory}: features.npy has shape {self._features.shape}, "
                    f"lengths say ({int(self.lengths.sum())}, {self.dim}); rerun extraction"
                )
        return self._features

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.meta["dtype"])

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, i: int) -> np.ndarray:
        """Frames of utterance i, (T_i, D), a memory-mapped view."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"{self.directory}: utterance index {i} out of range ({len(self)})")
        start = self.offsets[i]
        return self.features[start : start + self.lengths[i]]

    def index(self, utt_id: str) -> int:
        """Position of `utt_id`; KeyError names the folder."""
        if self._index is None:
            self._index = {u: i for i, u in enumerate(self.utt_ids)}
        if utt_id not in self._index:
            raise KeyError(f"{self.directory}: no utterance {utt_id!r}")
        return self._index[utt_id]

    def get(self, utt_id: str) -> np.ndarray:
        """Frames of the utterance called `utt_id`, (T, D)."""
        return self[self.index(utt_id)]

    def __repr__(self) -> str:
        return (f"FeatureSet({str(self.directory)!r}, utterances={len(self)}, frames={int(self.lengths.sum())}, "
                f"dim={self.dim})")


class FeatureSetWriter:
    """Streams utterances into a new feature set folder; nothing is held in memory.

    Usage:
        writer = FeatureSetWriter(out_dir, dim=39, dtype="float32", meta={"frontend": {...}})
        writer.add("utt1", frames)   # (T, 39)
        writer.close()
    """

    def __init__(self, directory: str | Path, dim: int, dtype: str = "float32", meta: dict | None = None):
        if dtype not in _DTYPES:
            raise ValueError(f"{directory}: dtype {dtype!r} not supported; use one of {sorted(_DTYPES)}")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        # An old meta.json would make a half-rewritten folder look complete.
        (self.directory / "meta.json").unlink(missing_ok=True)
        self.dim = int(dim)
        self.dtype = np.dtype(_DTYPES[dtype])
        self.meta = dict(meta or {})
        self.utt_ids: list[str] = []
        self.lengths: list[int] = []
        self._file = open(self.directory / "features.npy", "wb")
        self._file.write(_npy_header(self.dtype, (0, self.dim)))
        self._closed = False

    def add(self, utt_id: str, array: np.ndarray) -> None:
        """Append one utterance. array: (T, dim), T may be 0."""
        array = np.asarray(array)
        if array.ndim != 2 or array.shape[1] != self.dim:
            raise ValueError(f"{self.directory}: utterance {utt_id} has shape {array.shape}, expected (T, {self.dim})")
        if any(c.isspace() for c in utt_id) or not utt_id:
            raise ValueError(f"{self.directory}: utterance id {utt_id!r} is empty or holds whitespace")
        self._file.write(np.ascontiguousarray(array, dtype=self.dtype).tobytes())
        self.utt_ids.append(utt_id)
        self.lengths.append(int(array.shape[0]))

    def close(self) -> FeatureSet:
        """Finish the header, write lengths/ids/meta; returns the readable FeatureSet."""
        if not self._closed:
            total = int(sum(self.lengths))
            self._file.seek(0)
            self._file.write(_npy_header(self.dtype, (total, self.dim)))
            self._file.close()
            np.save(self.directory / "lengths.npy", np.asarray(self.lengths, dtype=np.int64))
            (self.directory / "utt_ids.txt").write_text("\n".join(self.utt_ids), encoding="utf-8")
            meta = {
                **self.meta,
                "dim": self.dim,
                "dtype": self.dtype.name,
                "num_utterances": len(self.lengths),
                "num_frames": total,
            }
            tmp = self.directory / "meta.json.tmp"
            tmp.write_text(json.dumps(meta, indent=2, sort_keys=True), encoding="utf-8")
            os.replace(tmp, self.directory / "meta.json")
            self._closed = True
        return FeatureSet(self.directory)

    def __enter__(self) -> "FeatureSetWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            # Leave no meta.json: the folder reads as interrupted, not as a short feature set.
            self._file.close()
