"""`python -m asr_gan.scoring.unit_quality`: how much k-means units of some frames say about their phones.

Before spending GPU time on a GAN, measure whether the features' clusters follow the phones at all. Two
measures of a unit inventory against phone labels, as in the HuBERT paper:
- purity: the share of frames whose cluster's most frequent phone is their own;
- PNMI, phone-normalised mutual information: I(phone; cluster) / H(phone), 0 for clusters that ignore the
  phone, 1 for clusters that determine it.
The features are standardised, optionally spliced with their neighbours (`--splice N`: frames t-N..t+N side by
side), and clustered with the segmenter's k-means for every `--clusters` count. Any rows work in place of frames:
segments with one label each (the unpooled k-means runs a decipherment reads, a toy task's segment vectors).

Labels, one of:
- time marks (`--ctm`, `utt channel start duration phone`, e.g. the `<split>.ref.ctm` of TIMIT's hand alignment
  that `data_prep.timit` writes): a frame takes the phone whose span holds its centre (frame start plus half the
  frontend's window; half a frame for other features); frames outside every span are left out;
- one phone per row of the features (`--labels`, `utt ph1 ph2 ...`);
- one phone per row that a segmenter cut from frames (`--labels` with `--label-transform` the segmenter's folder
  and `--label-frames` the frames it cut; e.g. a topline's alignment of the unpooled k-means runs,
  `asr_gan.lab.oracle_segments --label-rows`): every frame of a row gets the row's phone. Features at a lower
  frame rate than those frames (a model's layer at 50 Hz against 100 Hz MFCC) read every n-th label, n the ratio
  of the two `frame_rate`s in meta.json.
Labels from a supervised alignment carry its errors, which lower both measures: compare feature kinds against
the same labels. An utterance without labels, or whose rows do not match its labels, is named and skipped.

CLI: python -m asr_gan.scoring.unit_quality --features exp/demo/feats/mfcc/train \\
        --labels exp/demo/nopool_rows/train.segments --label-transform exp/demo/feats/mfcc/transform_nopool \\
        --label-frames exp/demo/feats/mfcc/train --clusters 40 100 300 --out exp/demo/unit_quality/mfcc.json
     python -m asr_gan.scoring.unit_quality --features exp/timit_matched/feats/mfcc/train \\
        --ctm exp/timit_matched/data/train.ref.ctm
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from asr_gan.ctm import TimedPhone, read_ctm
from asr_gan.features.pipeline import FeaturePipeline
from asr_gan.features.segmentation import assign_clusters, fit_kmeans
from asr_gan.features.storage import FeatureSet
from asr_gan.train.ctc_data import read_phone_labels

UNLABELLED = ""  # a frame outside every span of a CTM


@dataclass
class UnitQuality:
    clusters: int
    purity: float
    pnmi: float
    rows: int  # feature rows clustered (frames, or segments)


def frame_labels(labels: dict[str, list[str]], frames: FeatureSet, transform: FeaturePipeline | None,
                 skipped: list[str]) -> dict[str, np.ndarray]:
    """One phone per frame of `frames`: the labels themselves, or each row's phone spread over the frames of its
    run under `transform`. Utterances without labels or with a row count other than their labels' are added to
    `skipped` (with why) and left out."""
    out: dict[str, np.ndarray] = {}
    for i, utt in enumerate(frames.utt_ids):
        if utt not in labels:
            skipped.append(f"{utt}: no labels")
            continue
        phones = np.asarray(labels[utt], dtype=object)
        lengths = (transform.segments_with_lengths(frames[i])[1] if transform is not None
                   else np.ones(frames.lengths[i], dtype=np.int64))
        if len(lengths) != len(phones):
            skipped.append(f"{utt}: {len(phones)} labels for {len(lengths)} rows")
            continue
        out[utt] = np.repeat(phones, lengths)
    return out


def ctm_frame_labels(ctm: dict[str, list[TimedPhone]], frames: FeatureSet,
                     skipped: list[str]) -> dict[str, np.ndarray]:
    """One phone per frame of `frames` from time marks (`UNLABELLED` outside every span); utterances missing from
    the CTM are added to `skipped`."""
    meta = frames.meta
    if meta.get("vad"):
        raise ValueError(f"{frames.directory}: the VAD removed frames, so frame times are unknown; "
                         "extract the features without --vad to measure them against time marks")
    rate = meta.get("frame_rate")
    if not rate:
        raise ValueError(f"{frames.directory}: meta.json has no frame_rate; cannot place frames in time")
    frontend = meta.get("frontend") or {}
    windowed = frontend.get("kind") in ("mfcc", "fbank", "kaldi_fbank")
    half_window = frontend.get("frame_length_ms", 25.0) / 2000 if windowed else 0.5 / rate
    out: dict[str, np.ndarray] = {}
    for i, utt in enumerate(frames.utt_ids):
        if utt not in ctm:
            skipped.append(f"{utt}: not in the CTM")
            continue
        starts = np.array([start for _, start, _ in ctm[utt]])
        ends = np.array([end for _, _, end in ctm[utt]])
        names = np.array([phone for phone, _, _ in ctm[utt]], dtype=object)
        centres = np.arange(frames.lengths[i]) / rate + half_window
        span = np.clip(np.searchsorted(starts, centres, side="right") - 1, 0, None)
        inside = (centres >= starts[span]) & (centres < ends[span])
        out[utt] = np.where(inside, names[span], UNLABELLED)
    return out


def frame_step(features: FeatureSet, label_frames: FeatureSet) -> int:
    """How many labelled frames one feature frame spans (1 at the same rate)."""
    rate, label_rate = features.meta.get("frame_rate"), label_frames.meta.get("frame_rate")
    if rate is None or label_rate is None or rate == label_rate:
        return 1
    step = label_rate / rate
    if step < 1 or abs(step - round(step)) > 1e-6:
        raise ValueError(f"{features.directory}: frame rate {rate} Hz does not divide the labelled frames' "
                         f"{label_rate} Hz ({label_frames.directory})")
    return int(round(step))


def splice(frames: np.ndarray, context: int) -> np.ndarray:
    """(T, D) -> (T, (2 * context + 1) * D): each frame beside its neighbours, the edges repeated."""
    if context <= 0 or len(frames) == 0:
        return frames
    padded = np.pad(frames, ((context, context), (0, 0)), mode="edge")
    return np.concatenate([padded[j:j + len(frames)] for j in range(2 * context + 1)], axis=1)


def measure(cluster_ids: np.ndarray, phone_ids: np.ndarray, num_clusters: int, num_phones: int) -> tuple[float, float]:
    """(purity, PNMI) of a clustering against phone labels (both (N,) integer arrays)."""
    joint = np.zeros((num_clusters, num_phones))
    np.add.at(joint, (cluster_ids, phone_ids), 1.0)
    total = joint.sum()
    purity = float(joint.max(axis=1).sum() / total)
    p = joint / total
    p_cluster, p_phone = p.sum(axis=1, keepdims=True), p.sum(axis=0, keepdims=True)
    nz = p > 0
    mutual = float((p[nz] * np.log(p[nz] / (p_cluster @ p_phone)[nz])).sum())
    phone_entropy = float(-(p_phone[p_phone > 0] * np.log(p_phone[p_phone > 0])).sum())
    return purity, (mutual / phone_entropy if phone_entropy > 0 else 0.0)


def labelled_rows(features: FeatureSet, labels: dict[str, np.ndarray], step: int,
                  context: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The labelled utterances' frames (N, D), spliced, and their phones (N,) (unlabelled frames left out)."""
    rows, phones = [], []
    for i, utt in enumerate(features.utt_ids):
        if utt not in labels:
            continue
        lab = labels[utt][::step]
        n = min(len(lab), int(features.lengths[i]))  # a model's last frame may lack a full window
        keep = lab[:n] != UNLABELLED
        rows.append(splice(np.asarray(features[i], dtype=np.float32), context)[:n][keep])
        phones.append(lab[:n][keep])
    if not rows:
        raise ValueError(f"{features.directory}: no utterance has labels")
    return np.concatenate(rows), np.concatenate(phones)


def unit_quality(features: FeatureSet, labels: dict[str, np.ndarray], step: int, clusters: list[int],
                 context: int = 0, seed: int = 0, device: str | None = None) -> list[UnitQuality]:
    """Cluster the labelled utterances' frames (standardised, spliced) for each count in `clusters`."""
    x, phones = labelled_rows(features, labels, step, context)
    x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-5)
    inventory, phone_ids = np.unique(phones, return_inverse=True)
    results = []
    for k in clusters:
        ids = assign_clusters(x, fit_kmeans(x, k, seed=seed, device=device))
        purity, pnmi = measure(ids, phone_ids, k, len(inventory))
        results.append(UnitQuality(k, round(purity, 4), round(pnmi, 4), len(x)))
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m asr_gan.scoring.unit_quality",
                                description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--features", required=True, help="FeatureSet of frames to cluster")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--labels", help="one phone per row: `utt ph1 ph2 ...`")
    source.add_argument("--ctm", help="phone time marks: `utt channel start duration phone`")
    p.add_argument("--label-transform", help="segmenter folder that cut the labelled rows from --label-frames")
    p.add_argument("--label-frames", help="the frames the labelled rows were cut from (default: --features)")
    p.add_argument("--clusters", type=int, nargs="+", default=[50, 100, 200])
    p.add_argument("--splice", type=int, default=0, help="cluster frames t-N..t+N side by side")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None)
    p.add_argument("--out", help="write the results as JSON here")
    args = p.parse_args(argv)
    try:
        features = FeatureSet(args.features)
        label_frames = FeatureSet(args.label_frames) if args.label_frames else features
        transform = FeaturePipeline.load(args.label_transform) if args.label_transform else None
        skipped: list[str] = []
        if args.ctm:
            if args.label_transform or args.label_frames:
                raise ValueError("--ctm places the features' own frames in time; "
                                 "--label-transform and --label-frames are for --labels")
            labels = ctm_frame_labels(read_ctm(args.ctm), features, skipped)
        else:
            labels = frame_labels(read_phone_labels(args.labels), label_frames, transform, skipped)
        for line in skipped:
            print(f"[unit_quality] skipped {line}", file=sys.stderr)
        results = unit_quality(features, labels, frame_step(features, label_frames), args.clusters, args.splice,
                               args.seed, args.device)
    except (OSError, ValueError) as err:
        print(f"[unit_quality] error: {err}", file=sys.stderr)
        return 1
    print("| clusters | purity | PNMI | rows |\n|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r.clusters} | {r.purity:.3f} | {r.pnmi:.3f} | {r.rows} |")
    if args.out:
        report = {"features": args.features, "labels": args.labels or args.ctm, "label_transform": args.label_transform,
                  "splice": args.splice, "skipped": len(skipped), "results": [asdict(r) for r in results]}
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
