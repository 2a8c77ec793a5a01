"""Carry features between asr_gan and fairseq wav2vec-U (layout in /work/shared/reference/wav2vec_u_formats.md).

fairseq's layout for a split: `{split}.tsv` (root line, then `path<TAB>num_samples`), `{split}.npy` (all frames,
float32) + `{split}.lengths` (frames per line), optional `{split}.phn` / `{split}.wrd` label lines in the same
order, and `dict.phn.txt` (`<phone> <count>` lines).
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np

from asr_gan.features.storage import FeatureSet, FeatureSetWriter
from asr_gan.manifest import Utterance, read_manifest


def export_fairseq(
    feature_set: FeatureSet, manifest: list[Utterance] | str | Path, out_dir: str | Path, split: str
) -> int:
    """Write `feature_set` (and its manifest's labels) in fairseq's layout. Returns the utterance count.

    Lines follow the FeatureSet's order; manifest utterances without features (skipped at extraction) are left
    out, so every label line stays aligned with its feature rows.
    """
    utts = read_manifest(manifest) if isinstance(manifest, (str, Path)) else list(manifest)
    by_id = {u.utt_id: u for u in utts}
    missing = [u for u in feature_set.utt_ids if u not in by_id]
    if missing:
        raise KeyError(f"{feature_set.directory}: utterances {missing[:5]} are not in the manifest; wrong manifest?")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ordered = [by_id[u] for u in feature_set.utt_ids]
    # Root "/" with absolute paths is what fairseq's TIMIT recipe writes; os.path.join(root, abs) keeps abs.
    with open(out_dir / f"{split}.tsv", "w", encoding="utf-8") as f:
        f.write("/\n")
        for u in ordered:
            f.write(f"{os.path.abspath(u.audio)}\t{u.num_samples}\n")
    # Copied in blocks through a memory map: a split's features may not fit in memory.
    source = feature_set.features
    target = np.lib.format.open_memmap(out_dir / f"{split}.npy", mode="w+", dtype=np.float32, shape=source.shape)
    for start in range(0, source.shape[0], 1 << 16):
        target[start : start + (1 << 16)] = source[start : start + (1 << 16)]
    target.flush()
    del target
    (out_dir / f"{split}.lengths").write_text("".join(f"{n}\n" for n in feature_set.lengths), encoding="utf-8")
    if any(u.phones for u in ordered):
        (out_dir / f"{split}.phn").write_text("".join(f"{u.phones or ''}\n" for u in ordered), encoding="utf-8")
        counts = Counter(p for u in ordered for p in (u.phones or "").split())
        (out_dir / "dict.phn.txt").write_text("".join(f"{p} {counts[p]}\n" for p in sorted(counts)), encoding="utf-8")
    if any(u.words for u in ordered):
        (out_dir / f"{split}.wrd").write_text("".join(f"{u.words or ''}\n" for u in ordered), encoding="utf-8")
    return len(ordered)


def read_fairseq_tsv(path: str | Path) -> list[tuple[str, int]]:
    """(audio path joined with the root, num_samples) per line of a fairseq `{split}.tsv`."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines:
        raise ValueError(f"{path}: empty tsv; the first line must be the audio root directory")
    root = lines[0].strip()
    entries = []
    for lineno, line in enumerate(lines[1:], 2):
        fields = line.split("\t")
        if len(fields) != 2:
            raise ValueError(f"{path}:{lineno}: expected 'path<TAB>num_samples', got {line!r}")
        entries.append((os.path.join(root, fields[0]), int(fields[1])))
    return entries


def _utterance_ids(paths: list[str]) -> list[str]:
    """File stems as ids; a repeated stem (e.g. TIMIT's SA1 for every speaker) takes its parent folders too."""
    stems = [Path(p).with_suffix("").name for p in paths]
    if len(set(stems)) == len(stems):
        return stems
    ids = ["_".join(Path(p).with_suffix("").parts[-3:]).replace(" ", "_") for p in paths]
    if len(set(ids)) == len(ids):
        return ids
    return [f"{i:06d}_{s}" for i, s in enumerate(stems)]


def import_fairseq(directory: str | Path, split: str, out_dir: str | Path | None = None) -> FeatureSet:
    """Read fairseq's `{split}.npy/.lengths` (+ `.tsv` for ids) into a FeatureSet at `out_dir`
    (default `<directory>/asr_gan_<split>`). Utterance ids are the audio file stems from the tsv, or
    `line000001`, ... when no tsv is there."""
    directory = Path(directory)
    npy, lengths_path = directory / f"{split}.npy", directory / f"{split}.lengths"
    for path in (npy, lengths_path):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: not found; is {directory} a wav2vec-U feature folder?")
    features = np.load(npy, mmap_mode="r")
    lengths = [int(line) for line in lengths_path.read_text().split()]
    if sum(lengths) != features.shape[0]:
        raise ValueError(f"{lengths_path}: lengths sum to {sum(lengths)} but {npy} has {features.shape[0]} rows")
    tsv = directory / f"{split}.tsv"
    if tsv.is_file():
        entries = read_fairseq_tsv(tsv)
        if len(entries) != len(lengths):
            raise ValueError(f"{tsv}: {len(entries)} lines but {lengths_path} has {len(lengths)}")
        ids = _utterance_ids([p for p, _ in entries])
    else:
        ids = [f"line{i:06d}" for i in range(1, len(lengths) + 1)]
    out_dir = Path(out_dir) if out_dir is not None else directory / f"asr_gan_{split}"
    dtype = "float16" if features.dtype == np.float16 else "float32"
    writer = FeatureSetWriter(out_dir, features.shape[1], dtype, meta={"imported_from": str(npy)})
    offset = 0
    for utt_id, n in zip(ids, lengths):
        writer.add(utt_id, features[offset : offset + n])
        offset += n
    return writer.close()
