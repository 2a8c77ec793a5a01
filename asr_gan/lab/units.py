"""`python -m asr_gan.lab.units`: the cluster ids a decipherment read, written as one-hot feature rows.

`asr_gan.lab.decipher` reads each segment as the id of its nearest k-means centroid (after standardising the
rows) and keeps the centroids and the standardisation in its `model.npz`. This writes those ids for any
FeatureSet with the same rows (train, dev, test segments) as a FeatureSet of one-hot rows, one column per
cluster. On it, supervised CTC with a per-row linear generator (kernel 1, no hidden layer) learns the
cluster -> phone lookup that labels give: how much each cluster alone says about its phone. It is a reference
for a decipherment of the same clusters, not a bound on it: the decipherment also reads the phone bigram, so
context can put it below the lookup (docs/gan_investigation.md: the decipherment paragraphs).

Example:
  python -m asr_gan.lab.units --decipher-model exp/demo/decipher_mfcc/model.npz \\
      --features exp/demo/feats/mfcc/segments/train --out exp/demo/units64/train
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from asr_gan.features.storage import FeatureSet, FeatureSetWriter
from asr_gan.lab.decipher import cluster_sequences


def load_cluster_model(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centroids (K, D), mean (D,), std (D,)) of a decipherment's `model.npz`.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file holds no k-means centroids (a decipherment of argmax symbols, `--clusters 0`).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: decipherment model not found")
    with np.load(path) as model:
        centroids, mean, std = model["centroids"], model["mean"], model["std"]
    if len(centroids) == 0:
        raise ValueError(f"{path}: no k-means centroids (the decipherment read argmax symbols, --clusters 0)")
    return centroids, mean, std


def write_units(features: str | Path, model: str | Path, out: str | Path) -> dict:
    """One-hot rows of each row's cluster id under `model` -> FeatureSet `out`; returns a summary.

    Raises:
        FeatureSetError: `features` is not a FeatureSet.
        ValueError: its rows have another dimension than the model's centroids.
    """
    centroids, mean, std = load_cluster_model(model)
    source = FeatureSet(features)
    if source.dim != centroids.shape[1]:
        raise ValueError(f"{features}: {source.dim}-dim rows, but the centroids of {model} are "
                         f"{centroids.shape[1]}-dim")
    eye = np.eye(len(centroids), dtype=np.float32)
    counts = np.zeros(len(centroids), dtype=np.int64)
    with FeatureSetWriter(out, dim=len(centroids), meta={"units_of": str(features), "model": str(model)}) as writer:
        for utt_id in source.utt_ids:
            # the decipherment's own reading of a row, so the units are the ids it deciphered
            (ids,) = cluster_sequences([np.asarray(source.get(utt_id), dtype=np.float32)], centroids, mean, std)
            counts += np.bincount(ids, minlength=len(centroids))
            writer.add(utt_id, eye[ids])
    return {"features": str(features), "model": str(model), "out": str(out), "units": len(centroids),
            "utterances": len(source.utt_ids), "rows": int(counts.sum()), "units_used": int((counts > 0).sum())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asr_gan.lab.units", description=__doc__.split("\n")[0])
    parser.add_argument("--decipher-model", required=True, help="model.npz of python -m asr_gan.lab.decipher")
    parser.add_argument("--features", required=True, help="FeatureSet with the rows the decipherment read")
    parser.add_argument("--out", required=True, help="output FeatureSet of one-hot unit rows")
    args = parser.parse_args(argv)
    try:
        summary = write_units(args.features, args.decipher_model, args.out)
    except (FileNotFoundError, ValueError) as err:  # FeatureSetError is a ValueError
        print(f"[units] error: {err}", file=sys.stderr)
        return 1
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
