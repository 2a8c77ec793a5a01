"""`python -m asr_gan.scoring.frontend_quality`: front-ends side by side, on training and held-out voices.

For each front-end (a FeatureSet of training frames and one of held-out test frames), against phone labels
of both:
- unit quality (`asr_gan.scoring.unit_quality`): k-means of `--clusters` sizes fitted on the TRAINING frames,
  applied to both splits as the segmenter would apply them, and each split's purity and PNMI;
- a linear probe: a softmax regression from one frame to its phone, trained on the training frames and scored
  on the test frames (frame error rate, %): how much of the phone a linear readout finds in one frame.
Both standardise with the training frames' statistics. Labels come as for `unit_quality --labels` (one phone
per row of a segmenter's cut of `--label-frames`), for train and test each.

Writes a JSON list of {frontend, layer, clusters, split, purity, pnmi} rows, and one {frontend, layer, split,
probe_frame_error} row per front-end:

CLI: python -m asr_gan.scoring.frontend_quality --out exp/demo/unit_quality.json \\
        --train-labels exp/demo/nopool_rows/train.segments --test-labels exp/demo/nopool_rows/test.segments \\
        --label-transform exp/demo/feats/mfcc/transform_nopool \\
        --label-frames exp/demo/feats/mfcc/train exp/demo/feats/mfcc/test \\
        --frontend mfcc:-:exp/demo/feats/mfcc/train:exp/demo/feats/mfcc/test \\
        --frontend encoder:6:exp/demo/feats/encoder6/train:exp/demo/feats/encoder6/test
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from asr_gan.features.pipeline import FeaturePipeline
from asr_gan.features.segmentation import assign_clusters, fit_kmeans
from asr_gan.features.storage import FeatureSet
from asr_gan.scoring.unit_quality import frame_labels, frame_step, labelled_rows, measure
from asr_gan.train.ctc_data import read_phone_labels


@dataclass
class FrontendSpec:
    name: str
    layer: int | None
    train: str
    test: str

    @classmethod
    def parse(cls, spec: str) -> "FrontendSpec":
        parts = spec.split(":")
        if len(parts) != 4:
            raise ValueError(f"--frontend {spec!r}: write NAME:LAYER:TRAIN_FEATURES:TEST_FEATURES (LAYER - for none)")
        name, layer, train, test = parts
        return cls(name, None if layer in ("", "-") else int(layer), train, test)


def linear_probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                 num_classes: int, updates: int = 600, seed: int = 0) -> float:
    """Frame error rate (%) on the test frames of a softmax regression trained on the training frames
    (`updates` Adam steps on batches of 2048 frames: about 7 passes over the demo's 180k training frames)."""
    generator = torch.Generator().manual_seed(seed)
    x, y = torch.from_numpy(train_x), torch.from_numpy(train_y)
    layer = torch.nn.Linear(x.shape[1], num_classes)
    optimizer = torch.optim.Adam(layer.parameters(), lr=1e-2)
    for _ in range(updates):
        batch = torch.randint(len(x), (min(2048, len(x)),), generator=generator)
        loss = torch.nn.functional.cross_entropy(layer(x[batch]), y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        predicted = layer(torch.from_numpy(test_x)).argmax(-1).numpy()
    return round(100.0 * float((predicted != test_y).mean()), 2)


def compare(spec: FrontendSpec, labels: dict[str, dict[str, np.ndarray]], label_frames: dict[str, FeatureSet],
            clusters: list[int], seed: int = 0) -> list[dict]:
    """The JSON rows of one front-end (see the module docstring)."""
    rows: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for split, path in (("train", spec.train), ("test", spec.test)):
        features = FeatureSet(path)
        rows[split] = labelled_rows(features, labels[split], frame_step(features, label_frames[split]))
    mean, std = rows["train"][0].mean(axis=0), rows["train"][0].std(axis=0) + 1e-5
    standardised = {split: ((x - mean) / std).astype(np.float32) for split, (x, _) in rows.items()}
    inventory = np.unique(np.concatenate([rows["train"][1], rows["test"][1]]))
    phone_ids = {split: np.searchsorted(inventory, y) for split, (_, y) in rows.items()}
    out = []
    for k in clusters:
        centroids = fit_kmeans(standardised["train"], k, seed=seed)
        for split in ("train", "test"):
            purity, pnmi = measure(assign_clusters(standardised[split], centroids), phone_ids[split], k,
                                   len(inventory))
            out.append({"frontend": spec.name, "layer": spec.layer, "clusters": k, "split": split,
                        "purity": round(purity, 4), "pnmi": round(pnmi, 4)})
    error = linear_probe(standardised["train"], phone_ids["train"], standardised["test"], phone_ids["test"],
                         len(inventory), seed=seed)
    out.append({"frontend": spec.name, "layer": spec.layer, "split": "test", "probe_frame_error": error})
    return out


def markdown_table(rows: list[dict], clusters: list[int]) -> str:
    """PNMI per split and cluster count, and the probe's frame error, one line per front-end."""
    names = list(dict.fromkeys((r["frontend"], r["layer"]) for r in rows))
    head = " | ".join(f"{split} PNMI {k}" for split in ("train", "test") for k in clusters)
    lines = [f"| front-end | layer | {head} | test frame error, linear probe |",
             "|---|---:|" + "---:|" * (2 * len(clusters) + 1)]
    for name, layer in names:
        mine = [r for r in rows if r["frontend"] == name and r["layer"] == layer]
        cells = [next((f"{r['pnmi']:.3f}" for r in mine if r.get("split") == split and r.get("clusters") == k), "")
                 for split in ("train", "test") for k in clusters]
        probe = next((f"{r['probe_frame_error']:.1f}%" for r in mine if "probe_frame_error" in r), "")
        lines.append(f"| {name} | {'' if layer is None else layer} | " + " | ".join(cells) + f" | {probe} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m asr_gan.scoring.frontend_quality", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frontend", action="append", required=True, metavar="NAME:LAYER:TRAIN:TEST")
    p.add_argument("--train-labels", required=True, help="one phone per row of the labelled training rows")
    p.add_argument("--test-labels", required=True)
    p.add_argument("--label-transform", help="segmenter folder that cut the labelled rows from --label-frames")
    p.add_argument("--label-frames", nargs=2, required=True, metavar=("TRAIN", "TEST"),
                   help="the frames the labelled rows were cut from, train and test")
    p.add_argument("--clusters", type=int, nargs="+", default=[50, 100, 200])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="the JSON list")
    args = p.parse_args(argv)
    try:
        specs = [FrontendSpec.parse(spec) for spec in args.frontend]
        transform = FeaturePipeline.load(args.label_transform) if args.label_transform else None
        label_frames = {"train": FeatureSet(args.label_frames[0]), "test": FeatureSet(args.label_frames[1])}
        labels = {}
        for split, path in (("train", args.train_labels), ("test", args.test_labels)):
            skipped: list[str] = []
            labels[split] = frame_labels(read_phone_labels(path), label_frames[split], transform, skipped)
            for line in skipped:
                print(f"[frontend_quality] {split}: skipped {line}", file=sys.stderr)
        rows: list[dict] = []
        for spec in specs:
            rows.extend(compare(spec, labels, label_frames, args.clusters, args.seed))
            print(f"[frontend_quality] measured {spec.name} {spec.layer if spec.layer is not None else ''}", flush=True)
    except (OSError, ValueError) as err:
        print(f"[frontend_quality] error: {err}", file=sys.stderr)
        return 1
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    print(markdown_table(rows, args.clusters))
    return 0


if __name__ == "__main__":
    sys.exit(main())
