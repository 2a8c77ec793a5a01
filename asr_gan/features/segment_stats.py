"""How many segments the GAN gets per reference phone: the check that a segmentation suits the generator.

The generator emits one phone distribution per segment and merges repeats, so an utterance with fewer
segments than reference phones cannot be transcribed in full, and one with many more segments per phone
leaves the generator much merging to learn. wav2vec-U's k-means + pooling aims at about one segment per
phone; this module measures where a segmentation lands.

Reads a segment FeatureSet (`feats/<frontend>/segments/<split>/`) and the split's reference phones
(`text/<split>.phn`, `utt_id ph1 ph2 ...`). Writes a JSON report (default `<segments>/segment_stats.json`):

    {"segments_dir", "labels", "utterances", "utterances_without_labels", "segments", "phones",
     "segments_per_phone",            # total segments / total reference phones
     "per_utterance": {"mean", "median", "p10", "p90", "min", "max"},   # of each utterance's ratio
     "share_fewer_segments_than_phones",   # utterances the generator cannot transcribe in full
     "frames", "frames_per_phone", "frames_per_segment"}   # when the frame FeatureSet is still there

CLI: `python -m asr_gan.features.segment_stats --segments feats/mfcc/segments/dev --labels text/dev.phn`
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from asr_gan.features.storage import FeatureSet, FeatureSetError


@dataclass
class SegmentStats:
    """Segments per reference phone over one split (the module docstring lists the fields)."""

    segments_dir: str
    labels: str
    utterances: int
    utterances_without_labels: int
    segments: int
    phones: int
    segments_per_phone: float
    per_utterance: dict[str, float] = field(default_factory=dict)
    share_fewer_segments_than_phones: float = 0.0
    frames: int | None = None
    frames_per_phone: float | None = None
    frames_per_segment: float | None = None


def read_reference_phones(path: str | Path) -> dict[str, list[str]]:
    """`utt_id ph1 ph2 ...` lines (Kaldi `text` style, `text/<split>.phn`) -> {utt_id: phones}.

    Raises:
        FileNotFoundError: the file is missing (the message says which stage writes it).
        ValueError: an utterance listed twice (file:line).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: reference phones not found (written by `python -m asr_gan.text`)")
    references: dict[str, list[str]] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if parts[0] in references:
            raise ValueError(f"{path}:{lineno}: utterance {parts[0]!r} listed twice")
        references[parts[0]] = parts[1:]
    return references


def _frame_count(segments: FeatureSet, utt_ids: list[str]) -> int | None:
    """Frames behind the counted utterances, from the frame FeatureSet the segments were made from (if present)."""
    source = segments.meta.get("source")
    if not source:
        return None
    try:
        frames = FeatureSet(source)
    except (FeatureSetError, OSError):
        return None  # frames deleted or moved: the segment figures stand alone
    try:
        return int(sum(frames.lengths[frames.index(u)] for u in utt_ids))
    except KeyError:
        return None


def segment_stats(segments_dir: str | Path, labels_path: str | Path) -> SegmentStats:
    """Segments per reference phone of the utterances present in both the segments and the labels.

    Utterances with no reference phones (an empty line) are left out of the ratios, as are segment
    utterances missing from the labels (counted in `utterances_without_labels`).

    Raises:
        ValueError: no utterance of the segments has reference phones (the message names both files).
    """
    segments = FeatureSet(segments_dir)
    references = read_reference_phones(labels_path)
    segment_counts, phone_counts, used = [], [], []
    for utt_id, length in zip(segments.utt_ids, segments.lengths):
        phones = references.get(utt_id)
        if not phones:
            continue
        segment_counts.append(int(length))
        phone_counts.append(len(phones))
        used.append(utt_id)
    if not used:
        raise ValueError(
            f"{segments_dir}: none of its {len(segments)} utterances has reference phones in {labels_path} "
            "(wrong split, or labels of another corpus?)"
        )
    seg, pho = np.asarray(segment_counts, dtype=np.float64), np.asarray(phone_counts, dtype=np.float64)
    ratios = seg / pho
    frames = _frame_count(segments, used)
    return SegmentStats(
        segments_dir=str(segments_dir),
        labels=str(labels_path),
        utterances=len(used),
        utterances_without_labels=len(segments) - len(used),
        segments=int(seg.sum()),
        phones=int(pho.sum()),
        segments_per_phone=float(seg.sum() / pho.sum()),
        per_utterance={
            "mean": float(ratios.mean()),
            "median": float(np.median(ratios)),
            "p10": float(np.percentile(ratios, 10)),
            "p90": float(np.percentile(ratios, 90)),
            "min": float(ratios.min()),
            "max": float(ratios.max()),
        },
        share_fewer_segments_than_phones=float((seg < pho).mean()),
        frames=frames,
        frames_per_phone=None if frames is None else frames / float(pho.sum()),
        frames_per_segment=None if frames is None else frames / float(seg.sum()),
    )


def describe(stats: SegmentStats) -> str:
    """One line for logs: the ratio and the share of utterances the generator cannot cover."""
    frames = "" if stats.frames_per_phone is None else f", {stats.frames_per_phone:.1f} frames/phone"
    return (
        f"{stats.segments_dir}: {stats.segments_per_phone:.2f} segments per reference phone "
        f"({stats.segments} segments / {stats.phones} phones over {stats.utterances} utterances; per utterance "
        f"median {stats.per_utterance['median']:.2f}, p10 {stats.per_utterance['p10']:.2f}, "
        f"p90 {stats.per_utterance['p90']:.2f}){frames}; "
        f"{100 * stats.share_fewer_segments_than_phones:.0f}% of utterances have fewer segments than phones"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asr_gan.features.segment_stats",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--segments", required=True,
                        help="segment FeatureSet folder (feats/<frontend>/segments/<split>)")
    parser.add_argument("--labels", required=True, help="reference phones of the split (text/<split>.phn)")
    parser.add_argument("--out", help="JSON report (default: <segments>/segment_stats.json)")
    args = parser.parse_args(argv)
    try:
        stats = segment_stats(args.segments, args.labels)
    except (FileNotFoundError, FeatureSetError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else Path(args.segments) / "segment_stats.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(asdict(stats), indent=1) + "\n", encoding="utf-8")
    print(describe(stats))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
