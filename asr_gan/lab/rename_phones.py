"""Diagnosis: is a decipherment one renaming of its phones away from the labels?

A label-free decipherment can group the rows' clusters well and still name the groups wrongly: the clusters of
one true phone go together to another phone. This reads labels (one phone per row, e.g. the `.segments` of
`asr_gan.lab.oracle_segments`), so it is a diagnosis, never a step of a label-free run. It counts the rows per
(phone the model gives their cluster, label), renames the model's phones one to one by the largest counts first,
and writes the renamed model: `decipher --init-model` then starts EM from it. If that run ends near the truth's
end, a search over the phones' names is what a label-free run lacks (docs/gan_investigation.md).

A row "kept" is one whose cluster goes to the phone most frequent among its cluster's labels, as `decipher`'s
`start_kept`; the model's phone of a cluster is the one with the highest emission of it.

CLI: python -m asr_gan.lab.rename_phones --model exp/decipher/model.npz --features exp/oracle/train \
        --labels exp/oracle/train.segments --phones exp/text/phones.txt --out exp/renamed.npz
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from asr_gan.lab.decipher import cluster_sequences, load_model
from asr_gan.text.phones import PhoneInventory


def greedy_renaming(confusion: np.ndarray) -> np.ndarray:
    """One-to-one renaming (P,) of the model's phones (rows of `confusion`) to label phones (columns): the largest
    remaining count first. `renaming[p]` is the new name of the model's phone p."""
    phones = len(confusion)
    left = confusion.astype(np.float64).copy()
    renaming = np.full(phones, -1, dtype=np.int64)
    for _ in range(phones):
        model_phone, label_phone = np.unravel_index(np.argmax(left), left.shape)
        renaming[model_phone] = label_phone
        left[model_phone, :] = -np.inf
        left[:, label_phone] = -np.inf
    return renaming


def rename(model: dict[str, np.ndarray], label_counts: np.ndarray) -> tuple[dict[str, np.ndarray], dict]:
    """The model with its emission rows renamed by `greedy_renaming`, and a summary. `label_counts` (P, K): rows per
    (label phone, cluster)."""
    emissions = model["emissions"]
    if emissions.ndim != 2:
        raise ValueError("rename: a model whose emissions depend on the next phone (context next) is not supported")
    model_phone = emissions.argmax(0)  # (K,)
    majority = label_counts.argmax(0)
    confusion = np.zeros((len(emissions), len(emissions)))
    np.add.at(confusion, model_phone, label_counts.T)
    renaming = greedy_renaming(confusion)
    renamed = emissions.copy()
    renamed[renaming] = emissions
    rows = label_counts.sum(0)
    summary = {"kept_before": round(float(rows[model_phone == majority].sum() / rows.sum()), 4),
               "kept_after": round(float(rows[renaming[model_phone] == majority].sum() / rows.sum()), 4),
               "phones_renamed": int((renaming != np.arange(len(renaming))).sum())}
    return {**model, "emissions": renamed}, summary


def run(model_path: str, features: str, labels: str, phones: str, out: str) -> dict:
    from asr_gan.train.data import load_feature_sequences, read_segment_labels

    model = load_model(model_path)
    if not len(model["centroids"]):
        raise ValueError(f"{model_path}: a model of argmax symbols has no clusters to rename by")
    inventory = PhoneInventory.load(phones)
    sequences, utt_ids = load_feature_sequences(features)
    row_labels = read_segment_labels(labels, utt_ids, sequences, inventory)
    clusters = cluster_sequences(sequences, model["centroids"], model["mean"], model["std"])
    counts = np.zeros((len(inventory), len(model["centroids"])))
    for symbols, phone_ids in zip(clusters, row_labels):
        np.add.at(counts, (phone_ids, symbols), 1.0)
    renamed, summary = rename(model, counts)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as handle:  # np.savez would add .npz to a name without it
        np.savez(handle, **renamed)
    return {"model": model_path, "labels": labels, "out": out, **summary}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asr_gan.lab.rename_phones", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="model.npz of python -m asr_gan.lab.decipher")
    parser.add_argument("--features", required=True, help="the segment FeatureSet it deciphered")
    parser.add_argument("--labels", required=True, help="one phone per row (`utt ph ...`), e.g. an oracle .segments")
    parser.add_argument("--phones", required=True, help="phones.txt")
    parser.add_argument("--out", required=True, help="the renamed model.npz, for decipher --init-model")
    args = parser.parse_args(argv)
    try:
        summary = run(args.model, args.features, args.labels, args.phones, args.out)
    except (FileNotFoundError, ValueError) as err:
        print(f"[rename_phones] error: {err}", file=sys.stderr)
        return 1
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
