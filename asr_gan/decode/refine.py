"""`python -m asr_gan.decode.refine`: the label-free chain, from the phone encoder's first pass to words, in rounds.

Round 0 reads the audio with the shipped phone encoder (asr_gan.features.encoder): its CTC head's frame posteriors,
mapped onto the target phones (asr_gan.text.ipa_arpabet.arpabet_weights), are decoded with the lexicon and the word
LM (asr_gan.decode.words). The lexicon spellings of the decoded words are the round's phone labels: English words,
so English phonotactics, where the encoder heard phones of other languages.

Round k >= 1 trains a student on the training labels of round k - 1, its epoch chosen on the dev labels of round
k - 1, and decodes every split with it in the same way: by default the phone encoder itself, fine-tuned with CTC
(`--student-layers N`: its top N blocks only; `--anchor W`: its log-probs mixed with round 0's), or
(`--student segments`) a CTC generator on the GAN's segment features. This is the loop of the published successes on
weak features (Chen et al. 2019's GAN + HMM rounds, wav2vec-U's self-training), with the word decoder as the
labeller. The outputs of a round (greedy and word phones, score, label change) are in asr_gan.decode.round_outputs.

Nothing here reads a transcription:
- the word decoder's LM weight and word score are tuned on the dev audio each round by wav2vec-U's unsupervised
  rule (asr_gan.decode.tune);
- each round is scored by wav2vec-U's selection metric, the phone LM's perplexity of the round model's greedy dev
  phones over its phone usage squared (asr_gan.train.selection); the final round is the best so far by that score;
- rounds stop at `--rounds`, when a round does not lower the score, or when the training labels change by less
  than `--min-change` (edits over the previous round's phones).

`--references DIR` (text/<split>.phn and .wrd) adds each round's PER and WER to the report, to judge the chain; they
play no part in it. An utterance whose audio cannot be read is reported (round0/skipped.txt) and left out.

Writes OUT/round<k>/{<split>/hyp.wrd, <split>/hyp.phn, tune.json, round.json}, OUT/round<k>/student/ (a CTC run),
OUT/final/<split>/ (the final round's files) and OUT/report.{json,md}. A finished round is not run again.

    python -m asr_gan.decode.refine --data exp/demo/data --segments exp/demo/feats/encoder/segments \\
        --text exp/demo/text --gan-config exp/demo/gan.yaml --references exp/demo/text --out exp/demo/refine
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from asr_gan.decode.cross_lingual import CrossLingualTranscriber
from asr_gan.decode.round_outputs import (
    LogProbs,
    decode_words,
    label_change,
    label_free_score,
    read_mels,
    score_against,
    student_log_probs,
)
from asr_gan.decode.tune import tune_word_decoding
from asr_gan.decode.words import DecoderLexicon, WordDecoder, WordDecoderConfig
from asr_gan.text.lm import NgramLM
from asr_gan.text.phones import PhoneInventory
from asr_gan.train.ctc import CTCTrainConfig, pick_device, train_ctc
from asr_gan.train.ctc_data import load_feature_set, pair_features_with_labels, read_phone_labels, write_phone_labels
from asr_gan.train.encoder_student import EncoderStudent, EncoderStudentConfig, finetune


@dataclass
class RefineConfig:
    """The chain's settings (saved in report.json)."""

    rounds: int = 3  # student rounds after round 0
    student: str = "encoder"  # "encoder": the phone encoder fine-tuned; "segments": a CTC generator on segments
    splits: tuple[str, ...] = ("train", "dev", "test")
    train_split: str = "train"
    tune_split: str = "dev"  # unlabelled audio for the decoder's settings and the student's epoch
    lm_weights: tuple[float, ...] = (1.0, 2.0, 3.0, 4.0)
    word_scores: tuple[float, ...] = (-2.0, -1.0, 0.0, 1.0)
    min_change: float = 0.02
    epochs: int = 0  # student epochs; 0 = the student kind's default (encoder 8, segments 40)
    student_layers: int | None = None  # encoder student: top blocks fine-tuned (None: all; 0: the head alone)
    # Encoder student: its log-probs are mixed with round 0's, w * round 0 + (1 - w) * student, renormalised; the
    # shipped encoder has heard many voices, the student only the training ones (0: the student alone). At 0.5 the
    # demo's rounds lower the held-out PER on 3 of 3 seeds, alone they raise it (docs/cross_lingual_chain.md).
    anchor: float = 0.5
    # "tune": every round tunes LM weight and word score on the dev audio; "round0": rounds k >= 1 decode with round
    # 0's settings (the rule compares output with the greedy phones, which a student of words already resembles).
    decoder_settings: str = "tune"
    batch_frames: int = 1500  # segments student
    lr: float = 0.0  # 0 = the student kind's default (encoder 3e-4, segments 1e-3)
    seed: int = 1
    device: str = "auto"
    encoder_checkpoint: str | None = None


@dataclass
class RoundResult:
    """One round: its label-free score and decoder settings, and (with references) its error rates."""

    round: int
    source: str
    weighted_lm_ppl: float
    lm_ppl: float
    vocab_usage: float
    decoder: dict[str, float]
    label_change: float | None
    scores: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -------------------------------------------------------------------------------------------------- the chain


class Chain:
    """The rounds over one experiment's data, segments and text (module docstring)."""

    def __init__(self, config: RefineConfig, data: Path, segments: Path, text: Path, gan_config: Path, out: Path,
                 references: Path | None = None, progress: bool = True) -> None:
        self.config, self.data, self.segments, self.text = config, data, segments, text
        self.gan_config, self.out, self.references, self.progress = gan_config, out, references, progress
        self.inventory = PhoneInventory.load(text / "phones.txt")
        if self.inventory.silence is None:
            raise ValueError(f"{text / 'phones.txt'}: the chain needs a silence token (the decoder's blank)")
        for name in ("lexicon.txt", "word_lm.bin", "phone_lm.bin"):
            if not (text / name).is_file():
                raise FileNotFoundError(f"{text / name}: not found (build the text side with `python -m asr_gan.text`)")
        for split in config.splits:
            if not (data / f"{split}.jsonl").is_file():
                raise FileNotFoundError(f"{data / f'{split}.jsonl'}: manifest not found")
        if config.train_split not in config.splits or config.tune_split not in config.splits:
            raise ValueError(f"--train-split and --tune-split must be among --splits {config.splits}")
        self.lexicon = DecoderLexicon(text / "lexicon.txt", self.inventory)
        self.phone_lm = NgramLM(text / "phone_lm.bin")
        self.device = pick_device(config.device)
        if config.student not in ("encoder", "segments"):
            raise ValueError(f"--student {config.student}: expected encoder or segments")
        if config.decoder_settings not in ("tune", "round0"):
            raise ValueError(f"--decoder-settings {config.decoder_settings}: expected tune or round0")
        self.transcriber = CrossLingualTranscriber(list(self.inventory.symbols), config.encoder_checkpoint,
                                                   self.inventory.silence)
        self._mels: dict[str, dict[str, np.ndarray]] | None = None
        self.round0_settings: dict[str, float] | None = None
        self._round0: dict[tuple[str, str], torch.Tensor] = {}

    def log(self, message: str) -> None:
        print(f"[refine] {message}", flush=True)

    def round_dir(self, k: int) -> Path:
        return self.out / f"round{k}"

    def load_round(self, k: int) -> tuple[RoundResult, dict[str, dict[str, list[str]]]] | None:
        done = self.round_dir(k) / "round.json"
        if not done.is_file():
            return None
        result = RoundResult(**json.loads(done.read_text()))
        labels = {s: read_phone_labels(self.round_dir(k) / s / "hyp.phn") for s in self.config.splits}
        return result, labels

    def mels(self) -> dict[str, dict[str, np.ndarray]]:
        """Every split's encoder input, read once; unreadable audio is reported in round0/skipped.txt."""
        if self._mels is None:
            self._mels, skipped = {}, []
            for split in self.config.splits:
                self._mels[split], bad = read_mels(self.data / f"{split}.jsonl", self.transcriber, self.progress,
                                                   split)
                skipped += bad
            self.round_dir(0).mkdir(parents=True, exist_ok=True)
            (self.round_dir(0) / "skipped.txt").write_text("".join(f"{line}\n" for line in skipped),
                                                          encoding="utf-8")
            for line in skipped:
                print(f"[refine] skipped {line}", file=sys.stderr)
        return self._mels

    def log_probs_of_round(self, k: int, labels: dict[str, dict[str, list[str]]] | None) -> dict[str, LogProbs]:
        c = self.config
        mels = self.mels()
        if k == 0:
            return {split: {u: self.transcriber.log_probs(mel=m) for u, m in mels[split].items()}
                    for split in c.splits}
        assert labels is not None
        student_dir = self.round_dir(k) / "student"
        student_dir.mkdir(parents=True, exist_ok=True)
        if c.student == "encoder":
            student = EncoderStudent.from_encoder(self.transcriber.loaded, self.inventory)
            saved = student_dir / "student.pt"
            if saved.is_file():  # trained before the round was killed: decode with it
                self.log(f"r{k} student: already trained ({saved})")
                student.load_state_dict(torch.load(saved, map_location="cpu", weights_only=True)["state_dict"])
                student.to(self.device)
            else:
                pairs = {split: [(mels[split][u], labels[split][u]) for u in mels[split] if u in labels[split]]
                         for split in (c.train_split, c.tune_split)}
                config = EncoderStudentConfig(epochs=c.epochs or 8, lr=c.lr or 3e-4, seed=c.seed + k,
                                              train_layers=c.student_layers, device=str(self.device))
                history = finetune(student, pairs[c.train_split], pairs[c.tune_split], config,
                                   log=lambda m: self.log(f"r{k} student {m}"))
                (student_dir / "metrics.jsonl").write_text("".join(json.dumps(h) + "\n" for h in history))
                torch.save({"state_dict": student.state_dict(), "phones": student.phones}, saved.with_suffix(".tmp"))
                saved.with_suffix(".tmp").replace(saved)
            return {split: {u: self.anchored(student.log_probs(m), split, u) for u, m in mels[split].items()}
                    for split in c.splits}
        ctc = CTCTrainConfig(features=str(self.segments / c.train_split), labels="(round labels)",
                             phones=str(self.text / "phones.txt"), out=str(student_dir), model="generator",
                             gan_config=str(self.gan_config), epochs=c.epochs or 40, lr=c.lr or 1e-3,
                             batch_frames=c.batch_frames, seed=c.seed + k, device=c.device)
        sets = {}
        for split in (c.train_split, c.tune_split):
            features = load_feature_set(self.segments / split)
            sets[split], _ = pair_features_with_labels(features.utt_ids, features, labels[split], self.inventory,
                                                       source=f"round {k - 1} labels of {split}")
        result = train_ctc(ctc, sets[c.train_split], self.inventory, sets[c.tune_split], student_dir,
                           progress=self.progress, log_prefix=f"[refine r{k}]")
        return {split: student_log_probs(result.model, self.segments / split, self.inventory, self.device,
                                         c.batch_frames) for split in c.splits}

    def anchored(self, student: torch.Tensor, split: str, utt: str) -> torch.Tensor:
        """The encoder student's log-probs of one utterance, mixed with round 0's by `anchor`."""
        w = self.config.anchor
        if w <= 0.0:
            return student
        if (split, utt) not in self._round0:  # the shipped encoder's, computed once for every round
            self._round0[split, utt] = self.transcriber.log_probs(mel=self.mels()[split][utt])
        mixed = w * self._round0[split, utt] + (1.0 - w) * student.clamp_min(-1e4)  # no 0 * -inf
        return mixed.log_softmax(-1)

    def run_round(self, k: int, previous: dict[str, dict[str, list[str]]] | None
                  ) -> tuple[RoundResult, dict[str, dict[str, list[str]]]]:
        c = self.config
        per_split = self.log_probs_of_round(k, previous)
        score = label_free_score(per_split[c.tune_split], self.inventory, self.phone_lm)
        # 50 Hz encoder frames are decoded as CTC frames, a segment student's output as runs of its argmax.
        merge = k > 0 and c.student == "segments"
        base = WordDecoderConfig(merge_runs=merge)
        if k > 0 and c.decoder_settings == "round0" and self.round0_settings is not None:
            settings, tuning = dict(self.round0_settings), {"reused": "round 0's settings", **self.round0_settings}
        else:
            tuned = tune_word_decoding(list(per_split[c.tune_split].values()), self.inventory,
                                       self.text / "lexicon.txt", self.text / "word_lm.bin", c.lm_weights,
                                       c.word_scores, base, progress=self.progress)
            settings, tuning = dict(tuned.best.settings), tuned.to_dict()
        decoder = WordDecoder(self.lexicon, self.text / "word_lm.bin", self.inventory,
                              WordDecoderConfig(merge_runs=merge, **settings))
        directory = self.round_dir(k)
        labels: dict[str, dict[str, list[str]]] = {}
        scores: dict[str, dict[str, float]] = {}
        for split in c.splits:
            words, phones = decode_words(per_split[split], decoder, self.progress, split)
            (directory / split).mkdir(parents=True, exist_ok=True)
            write_phone_labels(directory / split / "hyp.wrd", words)
            write_phone_labels(directory / split / "hyp.phn", phones)
            labels[split] = phones
            scores[split] = score_against(self.references, split, phones, words, self.inventory.silence)
        change = label_change(previous[c.train_split], labels[c.train_split]) if previous else None
        source = "phone encoder" if k == 0 else f"{c.student} student on round {k - 1}'s words"
        result = RoundResult(k, source,
                             score["weighted_lm_ppl"], score["lm_ppl"], score["vocab_usage"], settings, change, scores)
        (directory / "tune.json").write_text(json.dumps(tuning, indent=1))
        (directory / "round.json").write_text(json.dumps(result.to_dict(), indent=1))  # written last: done
        return result, labels

    def run(self) -> dict[str, Any]:
        c = self.config
        self.out.mkdir(parents=True, exist_ok=True)
        results: list[RoundResult] = []
        best = 0
        previous = None
        stop = "rounds"
        for k in range(c.rounds + 1):
            loaded = self.load_round(k)
            if loaded:
                self.log(f"round {k}: already done ({self.round_dir(k) / 'round.json'})")
                result, labels = loaded
            else:
                self.log(f"round {k}: " + ("phone encoder" if k == 0 else f"student on round {k - 1}'s labels"))
                result, labels = self.run_round(k, previous)
            results.append(result)
            if k == 0:
                self.round0_settings = dict(result.decoder)
            self.log(f"round {k}: weighted_lm_ppl {result.weighted_lm_ppl:.2f}, decoder {result.decoder}, "
                     f"label change {result.label_change}" + "".join(
                         f", {s} " + " ".join(f"{m.upper()} {v:.1%}" for m, v in sc.items())
                         for s, sc in result.scores.items() if sc))
            if k > 0 and result.weighted_lm_ppl >= results[best].weighted_lm_ppl:
                stop = f"round {k} did not lower weighted_lm_ppl"
                break
            best = k
            if result.label_change is not None and result.label_change < c.min_change:
                stop = f"round {k} changed the labels by {result.label_change:.1%} < {c.min_change:.1%}"
                break
            previous = labels
        final = self.out / "final"
        if final.exists():
            shutil.rmtree(final)
        for split in c.splits:
            shutil.copytree(self.round_dir(best) / split, final / split)
        report = {"config": asdict(c), "rounds": [r.to_dict() for r in results], "final_round": best,
                  "stopped": stop, "rule": "lowest weighted_lm_ppl of the dev greedy phones; no transcription read"}
        (self.out / "report.json").write_text(json.dumps(report, indent=1))
        (self.out / "report.md").write_text(report_markdown(report))
        self.log(f"final round {best} ({stop}); its words and phones in {final}")
        return report


def report_markdown(report: dict[str, Any]) -> str:
    splits = report["config"]["splits"]
    head = ["round", "source", "weighted_lm_ppl", "LM weight", "word score", "label change"]
    scored = [(s, m) for s in splits for m in ("per", "wer")
              if any(m in r["scores"].get(s, {}) for r in report["rounds"])]
    lines = ["# The label-free chain, round by round", "",
             f"Final round: **{report['final_round']}** ({report['stopped']}); chosen by {report['rule']}.", "",
             "| " + " | ".join(head + [f"{s} {m.upper()}" for s, m in scored]) + " |",
             "|" + "---|" * (len(head) + len(scored))]
    for r in report["rounds"]:
        change = "" if r["label_change"] is None else f"{r['label_change']:.1%}"
        cells = [str(r["round"]), r["source"], f"{r['weighted_lm_ppl']:.2f}", str(r["decoder"].get("lm_weight")),
                 str(r["decoder"].get("word_score")), change]
        cells += [f"{r['scores'][s][m]:.1%}" if m in r["scores"].get(s, {}) else "" for s, m in scored]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------- command


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m asr_gan.decode.refine", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, type=Path, help="folder of <split>.jsonl manifests (data_prep)")
    p.add_argument("--segments", required=True, type=Path, help="folder of <split>/ segment FeatureSets")
    p.add_argument("--text", required=True, type=Path, help="text side: phones.txt, lexicon.txt, word_lm.bin, "
                   "phone_lm.bin")
    p.add_argument("--gan-config", required=True, type=Path, help="GAN config whose generator the student copies")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--references", type=Path, help="folder of <split>.phn/.wrd, for the report only")
    p.add_argument("--splits", nargs="+", default=list(RefineConfig.splits))
    p.add_argument("--rounds", type=int, default=RefineConfig.rounds)
    p.add_argument("--student", choices=("encoder", "segments"), default=RefineConfig.student)
    p.add_argument("--epochs", type=int, default=RefineConfig.epochs, help="student epochs (0: its default)")
    p.add_argument("--student-layers", type=int, default=None,
                   help="encoder student: fine-tune only the top N blocks and the head (0: the head alone; "
                        "default: all)")
    p.add_argument("--anchor", type=float, default=RefineConfig.anchor,
                   help="encoder student: mix in round 0's log-probs with this weight (0: the student alone)")
    p.add_argument("--decoder-settings", choices=("tune", "round0"), default=RefineConfig.decoder_settings,
                   help="rounds after 0: tune LM weight and word score again on the dev audio, or keep round 0's")
    p.add_argument("--min-change", type=float, default=RefineConfig.min_change)
    p.add_argument("--seed", type=int, default=RefineConfig.seed)
    p.add_argument("--device", default=RefineConfig.device)
    p.add_argument("--encoder-checkpoint", help="a phone encoder checkpoint (default: the shipped one)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    config = RefineConfig(rounds=args.rounds, student=args.student, splits=tuple(args.splits), epochs=args.epochs,
                          student_layers=args.student_layers, anchor=args.anchor,
                          decoder_settings=args.decoder_settings, min_change=args.min_change,
                          seed=args.seed, device=args.device, encoder_checkpoint=args.encoder_checkpoint)
    try:
        chain = Chain(config, args.data, args.segments, args.text, args.gan_config, args.out, args.references,
                      progress=not args.no_progress)
        chain.run()
    except (OSError, ValueError) as err:
        print(f"[refine] error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
