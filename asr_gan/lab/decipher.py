"""Label-free phone labels by decipherment: the whole job, from a segment FeatureSet and unpaired text to files.

Each utterance's segments are clustered (k-means on standardised rows) and the cluster sequence is deciphered into
phones by an HMM whose moves the text fixes and whose emissions EM learns (`asr_gan.lab.phone_hmm`: the model,
its starts, EM with restarts). This module reads the inputs, clusters, runs EM per speaker group, and writes the
models, labels and report; starts from labels are `asr_gan.lab.label_start`'s.

The Viterbi path gives every segment a phone (silence included): `train.segments` warm-starts the GAN's
generator (`warm_start_labels`), `train.phn` holds the merged phones for scoring and self-training.

`--context next` makes a segment's emissions depend on the phone after its own too (`asr_gan.lab.context_hmm`):
coarticulated units break the plain model's assumption that a phone's clusters do not depend on its neighbours.

Is the truth the model's best fit? `--start-labels` (one phone per row, e.g. the `.segments` of
`asr_gan.lab.oracle_segments`) replaces the restarts with one EM run that starts at the emissions those labels
count, and reports how pure the clusters are. If that run ends more likely than the frequency starts' best, the
decipherment failed to find the truth (a search problem); if it ends less likely, or wanders off the labels, the
truth is not what this model of the units prefers, and no search will find it. With the truth that is a diagnosis
(it reads labels). With a label-free reading (a GAN's, `asr_gan.lab.row_labels`) it is a start like any other:
`asr_gan.lab.alternate` begins there.

CLI: python -m asr_gan.lab.decipher --features exp/demo/oracle/train --text exp/demo/text/train_text.phn \
        --phones exp/demo/text/phones.txt --out exp/demo/decipher [--labels exp/demo/text/train.phn] \
        [--speakers utt2spk]   (Kaldi `utt speaker` lines: decipher each speaker on their own)
        [--start-labels exp/demo/oracle/train.segments] [--context next]
        [--device auto]   (EM on CUDA when there is one: the E-steps over a large corpus are the slow part)
        [--order 3]   (moves by the text's phone trigram, `asr_gan.lab.trigram_hmm`: slower, far stronger)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from asr_gan.features.segmentation import assign_clusters, fit_kmeans
from asr_gan.lab import context_hmm, trigram_hmm
from asr_gan.lab.context_hmm import ContextHmm
from asr_gan.lab.label_start import LabelStart, label_start
from asr_gan.lab.phone_hmm import DecipherResult, PhoneHmm, decode, fit, initial_stay, text_bigram
from asr_gan.lab.trigram_hmm import TrigramHmm
from asr_gan.manifest import read_manifest
from asr_gan.text.phones import PhoneInventory
from asr_gan.train.ctc import pick_device
from asr_gan.train.ctc_data import read_phone_labels, write_phone_labels
from asr_gan.train.ctc_outputs import per_on_common
from asr_gan.train.data import read_phone_text


def merged_phones(ids: np.ndarray, inventory: PhoneInventory) -> list[str]:
    """Segment phone ids -> the utterance's phones: runs merged, then silence dropped. A phone on both sides of
    a silence stays twice, as in the GAN's greedy output (asr_gan.train.selection) that the PER compares it with."""
    phones: list[str] = []
    previous = None
    for phone in inventory.decode(ids.tolist()):
        if phone != previous and phone != inventory.silence:
            phones.append(phone)
        previous = phone
    return phones


def cluster_sequences(features: Sequence[np.ndarray], centroids: np.ndarray, mean: np.ndarray,
                      std: np.ndarray) -> list[np.ndarray]:
    return [assign_clusters((f - mean) / std, centroids) for f in features]


def read_speakers(path: str | Path, utt_ids: Sequence[str]) -> dict[str, list[int]]:
    """Kaldi `utt2spk` lines (`utt speaker`), or a manifest (`.jsonl`, asr_gan.manifest: every utterance's
    `speaker`) -> {speaker: indices into utt_ids}, speakers in first-seen order."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: speaker map (utt2spk or manifest .jsonl) not found")
    if path.suffix == ".jsonl":
        speaker_of = {u.utt_id: u.speaker for u in read_manifest(path)}
    else:
        speaker_of = {}
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2:
                raise ValueError(f"{path}:{lineno}: expected `utterance speaker`, got {line!r}")
            speaker_of[parts[0]] = parts[1]
    missing = [u for u in utt_ids if u not in speaker_of]
    if missing:
        raise ValueError(f"{path}: no speaker for {len(missing)} utterances, e.g. {missing[0]}")
    groups: dict[str, list[int]] = {}
    for i, utt in enumerate(utt_ids):
        groups.setdefault(speaker_of[utt], []).append(i)
    return groups


def refine_start(model: dict[str, np.ndarray], sequences: Sequence[np.ndarray], cluster_seqs: Sequence[np.ndarray],
                 num_clusters: int) -> torch.Tensor:
    """EM start for these clusters from a decipherment of other (coarser) clusters of the same rows: every
    cluster's emission is its share of each old cluster, weighted by the old model's emission of that cluster,
    P(new | phone) = sum_old P(old | phone) P(new | old), with P(new | old) counted over the rows."""
    old_seqs = cluster_sequences(sequences, model["centroids"], model["mean"], model["std"])
    old_clusters = model["emissions"].shape[-1]
    joint = np.zeros((old_clusters, num_clusters))
    for old, new in zip(old_seqs, cluster_seqs):
        np.add.at(joint, (old, new), 1.0)
    share = (joint + 1e-6) / (joint + 1e-6).sum(1, keepdims=True)
    emissions = torch.from_numpy(model["emissions"].astype(np.float64) @ share)
    return emissions / emissions.sum(-1, keepdim=True)


def load_model(path: str | Path) -> dict[str, np.ndarray]:
    """Every array of a decipherment's `model.npz` (what `_decipher_group` writes)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: decipherment model (model.npz) not found")
    with np.load(path) as stored:
        return {k: stored[k] for k in stored.files}


def stay_from_lengths(sequences: Sequence[np.ndarray], sentences: Sequence[np.ndarray]) -> float:
    """The self-loop probability whose geometric durations give the audio's rows per utterance from the text's
    phones per sentence: 1 - 1/r, r = mean rows / mean phones (silence included on both sides). Label-free: the
    text is unpaired, only its length distribution is assumed to match the audio's."""
    ratio = (sum(len(s) for s in sequences) / len(sequences)) / (sum(len(s) for s in sentences) / len(sentences))
    return float(min(0.98, max(0.02, 1.0 - 1.0 / ratio)))


def _decipher_group(sequences: Sequence[np.ndarray], sentences: Sequence[np.ndarray], num_phones: int,
                    clusters: int, restarts: int, iterations: int, seed: int, progress: bool,
                    row_labels: Sequence[np.ndarray] | None = None, context: bool = False, backoff: float = 5.0,
                    init: str = "frequency", screen: int = 0, keep: int = 1, stay: str = "learn",
                    init_model: dict[str, np.ndarray] | None = None, start_noise: float = 0.0,
                    device: torch.device = torch.device("cpu"), order: int = 2
                    ) -> tuple[list[np.ndarray], DecipherResult, dict[str, np.ndarray], int, LabelStart | None]:
    """Standardise, cluster, fit and decode one group of utterances: (paths, result, model arrays, symbols,
    the start that `row_labels` give, if any). `stay`: "learn", "text" (`stay_from_lengths`) or a probability."""
    stacked = np.concatenate(sequences)
    mean, std = stacked.mean(0), stacked.std(0) + 1e-5
    if clusters > 0:
        centroids = fit_kmeans((stacked - mean) / std, clusters, seed=seed)
        cluster_seqs = cluster_sequences(sequences, centroids, mean, std)
    else:
        centroids = np.zeros((0, stacked.shape[1]), dtype=np.float32)
        clusters = stacked.shape[1]
        cluster_seqs = [s.argmax(1).astype(np.int64) for s in sequences]
    labelled = None
    if row_labels is not None:
        phone_shares = np.bincount(np.concatenate(list(sentences)), minlength=num_phones).astype(np.float64)
        labelled = label_start(cluster_seqs, row_labels, num_phones, clusters, context, backoff, start_noise,
                               phone_shares, np.random.default_rng(seed))
    fixed = None if stay == "learn" else stay_from_lengths(sequences, sentences) if stay == "text" else float(stay)
    start_emissions = (labelled.emissions if labelled else
                       refine_start(init_model, sequences, cluster_seqs, clusters) if init_model is not None else None)
    result = fit(cluster_seqs, clusters, sentences, num_phones, restarts, iterations, seed, progress=progress,
                 start_emissions=start_emissions, context=context, backoff=backoff,
                 init=init, screen=screen, keep=keep, stay=fixed, device=device, order=order)
    if labelled is not None:
        start_stay = initial_stay(num_phones, fixed)
        if order == 3:
            start, trigram = trigram_hmm.text_trigram(sentences, num_phones)
            labelled.at_start = decode(TrigramHmm(start, trigram, start_stay, labelled.emissions), cluster_seqs)
        elif context:
            start, bigram = context_hmm.text_bigram_with_end(sentences, num_phones)
            labelled.at_start = decode(ContextHmm(start, bigram, start_stay, labelled.emissions), cluster_seqs)
        else:
            start, bigram = text_bigram(sentences, num_phones)
            labelled.at_start = decode(PhoneHmm(start, bigram, start_stay, labelled.emissions), cluster_seqs)
    # With context, `bigram` has the end as its last column and `emissions` is (P, P+1, K); with order 3 the
    # moves are a trigram (P+1, P, P), stored as `trigram`.
    hmm = result.hmm
    moves = {"trigram": hmm.trigram.numpy()} if isinstance(hmm, TrigramHmm) else {"bigram": hmm.bigram.numpy()}
    model = {"centroids": centroids, "mean": mean, "std": std, "start": hmm.start.numpy(), **moves,
             "stay": hmm.stay.numpy(), "emissions": hmm.emissions.numpy(),
             "context": np.array("next" if context else "none"), "order": np.array(order)}
    return decode(result.hmm.to(device), cluster_seqs), result, model, clusters, labelled


def run(features: str, text: str, phones: str, out: str | Path, clusters: int = 64, restarts: int = 8,
        iterations: int = 100, seed: int = 0, labels: str | None = None, progress: bool = True,
        speakers: str | None = None, start_labels: str | None = None, context: str = "none",
        backoff: float = 5.0, init: str = "frequency", screen: int = 0, keep: int = 1, stay: str = "learn",
        init_model: str | None = None, start_noise: float = 0.0, device: str = "auto", order: int = 2) -> dict:
    """Decipher one segment FeatureSet; writes the HMM, segment labels, merged phones and report.json.

    `clusters=0` reads each row's argmax as its symbol instead of clustering: for rows that already are
    scores over classes (another recogniser's posteriors, one-hot unit ids).

    `speakers` (a Kaldi utt2spk file) deciphers each speaker's utterances on their own, with their own
    standardisation, clusters and emissions, and pools the labels. Across voices a phone has several acoustic
    modes, and one decipherment of all of them fails where each voice alone is solved (docs/gan_investigation.md,
    "Toy task with several voices"). The models go to `model_<speaker>.npz` instead of `model.npz`.

    `start_labels` (one phone per row) starts a single EM run at the emissions they count (module docstring);
    the report adds the clusters' purity and, with `labels`, the PER of the start and of a per-cluster lookup.
    `start_noise` (0-1) starts that far from the labels instead: each cluster, with that probability, is handed
    whole to a phone drawn by the text's frequencies (`reassign_clusters`, seeded by `seed`), and the report's
    `start_kept` is the share of rows whose cluster still goes to its labels' most frequent phone. How close to the
    truth must a label-free start be for EM to reach the truth's basin?

    `context="next"`: emissions depend on the next phone too (`asr_gan.lab.context_hmm`), each pair's smoothed
    toward its phone's with `backoff` pseudo-counts. `init`, `screen` and `keep`: how the restarts start and
    which run to the end (`fit`). `stay`: the self-loop probability, "learn" (EM), "text" (fixed by the
    audio's rows per utterance against the text's phones per sentence, `stay_from_lengths`) or a number.

    `init_model` (a `model.npz` of an earlier run on the same rows, e.g. with fewer clusters) replaces the restarts
    with one EM run from the start it gives these clusters (`refine_start`): a search at few clusters, where
    random starts find the truth's basin more easily, carried to more clusters, where the units are purer.

    `device`: "auto" (CUDA when there is one), "cpu" or a torch device name: where EM and Viterbi run. k-means
    and everything written stay as on the CPU; the report names the device.

    `order=3` makes the HMM's moves follow the text's phone trigram instead of its bigram
    (`asr_gan.lab.trigram_hmm`): P + 1 times the work per E-step, a far stronger language model. The emissions
    are the plain model's, so `init_model` carries them between the orders. Not with `context="next"`.
    """
    if context not in ("none", "next"):
        raise ValueError(f"context {context!r}: expected none or next")
    if order not in (2, 3) or (order == 3 and context == "next"):
        raise ValueError(f"order {order}: expected 2, or 3 with context none")
    if init not in ("frequency", "lookup"):  # before the features load, not after the clustering
        raise ValueError(f"init {init!r}: expected frequency or lookup")
    model_start: dict[str, np.ndarray] | None = None
    if init_model is not None:
        if start_labels or speakers:
            raise ValueError("init_model: one EM run from an earlier model; not with start_labels or speakers")
        model_start = load_model(init_model)
        old_context = str(model_start.get("context", "none"))
        if (old_context == "next") != (context == "next") or not len(model_start["centroids"]):
            raise ValueError(f"{init_model}: a model with context {old_context!r} and "
                             f"{len(model_start['centroids'])} k-means clusters cannot start a run with context "
                             f"{context!r} (it needs the same context and k-means clusters)")
    if not 0.0 <= start_noise <= 1.0:
        raise ValueError(f"start_noise {start_noise}: expected a share in [0, 1]")
    if start_noise and not start_labels:
        raise ValueError("start_noise: moves clusters of a start that start_labels count; give start_labels")
    if stay not in ("learn", "text"):
        try:
            number = float(stay)
        except ValueError:
            number = -1.0
        if not 0.0 <= number < 1.0:
            raise ValueError(f"stay {stay!r}: expected learn, text or a probability in [0, 1)")
    try:
        torch_device = pick_device(device)
    except RuntimeError as err:  # torch's own words for a name it does not know
        raise ValueError(f"device {device!r}: {err}") from err
    if torch_device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r}: CUDA is not available here (use cpu or auto)")
    from asr_gan.train.data import load_feature_sequences, read_segment_labels

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    inventory = PhoneInventory.load(phones)
    sequences, utt_ids = load_feature_sequences(features)
    groups = read_speakers(speakers, utt_ids) if speakers else {"": list(range(len(utt_ids)))}
    sentences = read_phone_text(text, inventory)
    row_labels = read_segment_labels(start_labels, utt_ids, sequences, inventory) if start_labels else None
    paths: list[np.ndarray] = [np.zeros(0, np.int64)] * len(utt_ids)
    readings: dict[str, list[np.ndarray]] = {"at_start": list(paths), "lookup": list(paths)}
    per_group = []
    fit_seconds = 0.0  # EM time, as the report gave it before speakers existed
    for speaker, rows in groups.items():
        group_paths, result, model, symbols_count, labelled = _decipher_group(
            [sequences[i] for i in rows], sentences, len(inventory), clusters, restarts, iterations, seed, progress,
            [row_labels[i] for i in rows] if row_labels is not None else None, context == "next", backoff,
            init, screen, keep, stay, model_start, start_noise, torch_device, order)
        for j, i in enumerate(rows):
            paths[i] = group_paths[j]
            if labelled is not None:
                readings["at_start"][i], readings["lookup"][i] = labelled.at_start[j], labelled.lookup[j]
        # A speaker id names a file here: no path separators (Kaldi ids have none, other maps might).
        np.savez(out / (f"model_{speaker.replace('/', '_')}.npz" if speaker else "model.npz"), **model)
        per_group.append({"speaker": speaker, "utterances": len(rows), "selected_restart": result.selected,
                          "log_likelihoods": [round(x, 2) for x in result.log_likelihoods],
                          "start_log_likelihoods": [round(x, 2) for x in result.start_log_likelihoods],
                          "stay_mean": round(float(result.hmm.stay.mean()), 4)})
        if labelled is not None:
            per_group[-1]["purity"] = round(labelled.purity, 4)
            if start_noise:
                per_group[-1]["start_kept"] = round(labelled.kept, 4)
        fit_seconds += result.seconds
    write_phone_labels(out / "train.segments", {u: inventory.decode(p.tolist()) for u, p in zip(utt_ids, paths)})
    hyps = {u: merged_phones(p, inventory) for u, p in zip(utt_ids, paths)}
    write_phone_labels(out / "train.phn", hyps)
    report = {"features": str(features), "symbols": "kmeans" if clusters > 0 else "argmax",
              "clusters": symbols_count, "context": context, "order": order,
              "restarts": 1 if start_labels or init_model else restarts,
              "init": "labels" if start_labels else "model" if init_model else init, "screen": screen, "keep": keep,
              "iterations": iterations, "seed": seed, "stay": stay, "device": str(torch_device),
              "seconds": round(fit_seconds, 1),
              "segments_per_phone": round(float(sum(len(s) for s in sequences))
                                          / max(1, sum(len(h) for h in hyps.values())), 3)}
    if speakers:
        report["speakers"] = per_group
    else:
        report.update({k: v for k, v in per_group[0].items() if k not in ("speaker", "utterances")})
    if start_labels:
        report["start_labels"] = str(start_labels)
        if start_noise:
            report["start_noise"] = start_noise
    if init_model:
        report["init_model"] = str(init_model)
    if labels:
        references = read_phone_labels(labels)
        scored = per_on_common(references, hyps, inventory.silence)
        if scored is None:
            raise ValueError(f"{labels}: no utterance id matches {features}")
        report["per"] = round(scored[0], 5)
        report["per_utterances"] = scored[1]
        for name, reading in readings.items() if start_labels else ():
            merged = {u: merged_phones(p, inventory) for u, p in zip(utt_ids, reading)}
            report[f"per_{name}"] = round(per_on_common(references, merged, inventory.silence)[0], 5)
    (out / "report.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asr_gan.lab.decipher", description=__doc__.split("\n")[0])
    parser.add_argument("--features", required=True, help="segment FeatureSet to label")
    parser.add_argument("--text", required=True, help="phonemised unpaired text (train_text.phn)")
    parser.add_argument("--phones", required=True, help="phones.txt")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--clusters", type=int, default=64,
                        help="k-means clusters (cipher symbols); 0 = each row's argmax")
    parser.add_argument("--restarts", type=int, default=8, help="EM restarts; the most likely is kept")
    parser.add_argument("--iterations", type=int, default=100, help="EM iterations per restart")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--labels", help="reference phones, `utt ph ...`: PER of the result, never used to fit")
    parser.add_argument("--speakers", help="utt2spk file, or the split's manifest (.jsonl): decipher each "
                                               "speaker's utterances on their own")
    parser.add_argument("--start-labels", help="one phone per row (`utt ph ...`): start one EM run at the "
                        "emissions they count: the truth, to see whether it is the model's best fit (reads labels), "
                        "or a label-free reading such as a GAN's")
    parser.add_argument("--start-noise", type=float, default=0.0,
                        help="with --start-labels: hand this share of the clusters, drawn at random, to phones drawn "
                        "by the text's frequencies before EM (how close must a start be to reach the truth?)")
    parser.add_argument("--context", choices=["none", "next"], default="none",
                        help="next: a segment's clusters depend on the phone after its own too (coarticulation)")
    parser.add_argument("--backoff", type=float, default=5.0,
                        help="with --context next: pseudo-counts pulling each pair's emissions toward its phone's")
    parser.add_argument("--init", choices=["frequency", "lookup"], default="frequency",
                        help="restarts start from frequency ranks, or from random hard cluster -> phone readings")
    parser.add_argument("--screen", type=int, default=0,
                        help="> 0: run every restart this many iterations, then only the --keep most likely on")
    parser.add_argument("--keep", type=int, default=1, help="restarts that run on after --screen")
    parser.add_argument("--stay", default="learn",
                        help="self-loop probability: learn (EM), text (fixed so that the text's phones per sentence "
                        "give the audio's rows per utterance) or a number")
    parser.add_argument("--init-model", help="model.npz of an earlier run on these rows (e.g. fewer clusters): one EM "
                        "run from the start it gives these clusters instead of the restarts")
    parser.add_argument("--device", default="auto", help="where EM runs: auto (CUDA when there is one), cpu, cuda")
    parser.add_argument("--order", type=int, choices=[2, 3], default=2,
                        help="the text's phone n-gram that the HMM's moves follow: 2 (bigram) or 3 (trigram: about "
                        "P + 1 times slower, a far stronger model; with --context none)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        report = run(args.features, args.text, args.phones, args.out, args.clusters, args.restarts,
                     args.iterations, args.seed, args.labels, not args.no_progress, args.speakers,
                     args.start_labels, args.context, args.backoff, args.init, args.screen, args.keep,
                     args.stay, args.init_model, args.start_noise, args.device, args.order)
    except (FileNotFoundError, ValueError) as err:
        print(f"[decipher] error: {err}", file=sys.stderr)
        return 1
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
