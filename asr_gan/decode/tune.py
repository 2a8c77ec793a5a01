"""Choose decoding settings without labels: LM weight and word score (or phone insertion bonus), on unlabelled audio.

The rule is wav2vec-U's (fairseq examples/wav2vec/unsupervised/kaldi_self_train/st/local/unsup_select.py, used to
pick the decoding hyper-parameters of its word decoder): for each setting on a grid, decode validation utterances
and compute

    lm_ppl        perplexity of the decoder's output under the LM (word LM for words, phone LM for phones)
    disagreement  edit distance between the output's phones (words spelled with the lexicon) and the greedy phone
                  transcript of the same utterances, over the greedy transcript's length (silence removed)
    score         ln(lm_ppl) * max(disagreement, min_disagreement)          -- lowest wins

Fluent output (low perplexity) that still says what the generator heard (low disagreement) wins. The released
script floors the disagreement with `--min_vt_uer` (default 0); our default floor is 0.05, because without it the
phone decoder's `lm_weight=0` reproduces the greedy transcript exactly (disagreement 0, score 0) and always wins,
which would make the phone LM useless. Within the floor, settings compete on perplexity alone. Ties go to the lower
perplexity, then to the earlier grid point.

    python -m asr_gan.decode.tune --model exp/demo/bundle --features-dir exp/demo/feats/mfcc/segments/dev \\
        --decoder words --update-bundle
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import torch
from tqdm import tqdm

from asr_gan.decode.greedy import greedy_decode, symbols
from asr_gan.decode.phone_beam import SILENCE_MODES, PhoneBeamConfig, PhoneLMScorer, phone_beam_search
from asr_gan.decode.words import DecoderLexicon, WordDecoder, WordDecoderConfig
from asr_gan.text.lm import NgramLM
from asr_gan.text.phones import PhoneInventory
from asr_gan.train.ctc_outputs import phone_error_rate

DEFAULT_MIN_DISAGREEMENT = 0.05
DEFAULT_LM_WEIGHTS = (0.5, 1.0, 2.0, 3.0, 4.0)
DEFAULT_WORD_SCORES = (-2.0, -1.0, 0.0, 1.0)
DEFAULT_PHONE_LM_WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0)
DEFAULT_INSERTION_BONUSES = (-1.0, 0.0, 1.0)


def selection_score(lm_ppl: float, disagreement: float, min_disagreement: float = DEFAULT_MIN_DISAGREEMENT) -> float:
    """wav2vec-U's unsupervised decoding metric: ln(perplexity) * max(disagreement, floor); lower is better."""
    return math.log(lm_ppl) * max(disagreement, min_disagreement)


@dataclass
class TuningPoint:
    """One grid setting and how its output scored."""

    settings: dict[str, Any]
    lm_ppl: float
    disagreement: float
    score: float


@dataclass
class TuningResult:
    """The chosen setting (`best`) and every grid point, in grid order."""

    decoder: str
    best: TuningPoint
    points: list[TuningPoint]
    min_disagreement: float
    utterances: int
    rule: str = "ln(lm_ppl) * max(disagreement, min_disagreement)"
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def table(self) -> str:
        """The grid as a Markdown table, the chosen row marked."""
        names = list(self.points[0].settings) if self.points else []
        lines = ["| " + " | ".join(names + ["LM ppl", "disagreement", "score", ""]) + " |",
                 "|" + "---|" * (len(names) + 4)]
        for point in self.points:
            mark = "chosen" if point is self.best else ""
            cells = [f"{point.settings[n]}" for n in names]
            cells += [f"{point.lm_ppl:.2f}", f"{point.disagreement:.3f}", f"{point.score:.4f}", mark]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)


def _choose(points: list[TuningPoint]) -> TuningPoint:
    return min(points, key=lambda p: (p.score, p.lm_ppl))  # min() keeps the first of equals: grid order


def _greedy_phones(log_probs: Sequence[torch.Tensor], inventory: PhoneInventory) -> list[list[str]]:
    return [symbols(greedy_decode(lp, inventory)) for lp in log_probs]


def tune_word_decoding(log_probs: Sequence[torch.Tensor], inventory: PhoneInventory, lexicon: str | Path,
                       word_lm: str | Path, lm_weights: Sequence[float] = DEFAULT_LM_WEIGHTS,
                       word_scores: Sequence[float] = DEFAULT_WORD_SCORES,
                       base: WordDecoderConfig = WordDecoderConfig(),
                       min_disagreement: float = DEFAULT_MIN_DISAGREEMENT, progress: bool = False) -> TuningResult:
    """Pick (lm_weight, word_score) for word decoding from unlabelled utterances.

    Args:
        log_probs: per utterance, (T_i, P) generator log-probs.
        inventory: the generator's phones.
        lexicon, word_lm: `lexicon.txt` and the word LM the decoder uses; the LM also gives the perplexity.
        lm_weights, word_scores: the grid (every pair is tried).
        base: the other decoder settings.
    """
    decoder_lexicon = DecoderLexicon(lexicon, inventory)
    lm = NgramLM(word_lm)
    greedy = _greedy_phones(log_probs, inventory)
    points = []
    grid = list(itertools.product(lm_weights, word_scores))
    for lm_weight, word_score in tqdm(grid, desc="tune words", disable=not progress):
        decoder = WordDecoder(decoder_lexicon, word_lm, inventory,
                              replace(base, lm_weight=float(lm_weight), word_score=float(word_score)))
        hyps = [decoder.decode(lp) for lp in log_probs]
        words = [symbols(h.words) for h in hyps]
        phones = [symbols(h.phones) for h in hyps]
        points.append(_point({"lm_weight": float(lm_weight), "word_score": float(word_score)},
                             lm.perplexity(words), greedy, phones, inventory, min_disagreement))
    return TuningResult("words", _choose(points), points, min_disagreement, len(log_probs),
                        extra={"lexicon_words": len(decoder_lexicon), "lexicon_skipped": decoder_lexicon.skipped})


def tune_phone_decoding(log_probs: Sequence[torch.Tensor], inventory: PhoneInventory, phone_lm: str | Path,
                        lm_weights: Sequence[float] = DEFAULT_PHONE_LM_WEIGHTS,
                        insertion_bonuses: Sequence[float] = DEFAULT_INSERTION_BONUSES,
                        silence_modes: Sequence[str] = SILENCE_MODES,
                        base: PhoneBeamConfig = PhoneBeamConfig(),
                        min_disagreement: float = DEFAULT_MIN_DISAGREEMENT, progress: bool = False) -> TuningResult:
    """Pick (lm_weight, insertion_bonus, silence handling) for the phone-LM beam search (no lexicon needed: TIMIT).

    Perplexity is the phone LM's on the output phones with silence removed and put back at both edges (when the LM
    knows the silence token), the same text for every silence setting so they compare fairly.
    """
    scorer = PhoneLMScorer(phone_lm)
    lm = NgramLM(phone_lm)
    silence = inventory.silence
    if silence is None or silence not in lm:
        silence_modes = [m for m in silence_modes if m != "score"] or ["skip"]
    edge = [silence] if silence is not None and silence in lm else []
    greedy = _greedy_phones(log_probs, inventory)
    points = []
    grid = list(itertools.product(lm_weights, insertion_bonuses, silence_modes))
    for lm_weight, bonus, mode in tqdm(grid, desc="tune phone LM", disable=not progress):
        config = replace(base, lm_weight=float(lm_weight), insertion_bonus=float(bonus), silence=mode)
        phones = [symbols(phone_beam_search(lp, inventory, scorer, config)) for lp in log_probs]
        ppl = lm.perplexity([edge + p + edge for p in phones])
        points.append(_point({"lm_weight": float(lm_weight), "insertion_bonus": float(bonus), "silence": mode},
                             ppl, greedy, phones, inventory, min_disagreement))
    return TuningResult("phone_lm", _choose(points), points, min_disagreement, len(log_probs))


def _point(settings: dict[str, Any], lm_ppl: float, greedy: list[list[str]], phones: list[list[str]],
           inventory: PhoneInventory, min_disagreement: float) -> TuningPoint:
    ignore = [inventory.silence] if inventory.silence else []
    disagreement = phone_error_rate(greedy, phones, ignore)
    return TuningPoint(settings, lm_ppl, disagreement, selection_score(lm_ppl, disagreement, min_disagreement))


# ----------------------------------------------------------------------------------------------------- command


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m asr_gan.decode.tune", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="bundle folder")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--features-dir", help="FeatureSet of segments (unlabelled validation utterances)")
    source.add_argument("--manifest", help="JSONL manifest of unlabelled validation audio")
    parser.add_argument("--decoder", choices=["words", "phone_lm"],
                        help="default: words when the bundle has a lexicon and a word LM, else phone_lm")
    parser.add_argument("--lm-weights", type=_floats, help="comma-separated grid")
    # Negative lists need the = form: --word-scores=-2,-1,0
    parser.add_argument("--word-scores", type=_floats, default=list(DEFAULT_WORD_SCORES))
    parser.add_argument("--insertion-bonuses", type=_floats, default=list(DEFAULT_INSERTION_BONUSES))
    parser.add_argument("--silence-modes", default=",".join(SILENCE_MODES))
    parser.add_argument("--min-disagreement", type=float, default=DEFAULT_MIN_DISAGREEMENT)
    parser.add_argument("--max-utterances", type=int, default=500, help="decode at most this many (the first N)")
    parser.add_argument("--update-bundle", action="store_true", help="write the chosen setting into bundle.json")
    parser.add_argument("--out", help="write the report (JSON) here; a Markdown table goes beside it")
    return parser


def _log_probs_of_source(bundle: Any, args: argparse.Namespace) -> list[torch.Tensor]:
    from asr_gan.features.storage import FeatureSet

    log_probs = []
    if args.features_dir:
        features = FeatureSet(args.features_dir)
        count = min(len(features), args.max_utterances)
        for i in tqdm(range(count), desc="generator", unit="utt"):
            log_probs.append(bundle.log_probs_of_segments(features[i]))
        return log_probs
    from asr_gan.audio.io import AudioError
    from asr_gan.manifest import read_manifest

    for utt in tqdm(read_manifest(args.manifest)[: args.max_utterances], desc="generator", unit="utt"):
        try:
            log_probs.append(bundle.log_probs_of_utterance(utt)[0])
        except AudioError as err:
            print(f"skipped {utt.utt_id}: {err}", file=sys.stderr)
    return log_probs


def main(argv: list[str] | None = None) -> int:
    from asr_gan.decode.bundle import Bundle

    args = build_parser().parse_args(argv)
    bundle = Bundle.load(args.model)
    decoder = args.decoder or ("words" if bundle.can_decode_words else "phone_lm")
    print("tune: " + json.dumps({k: v for k, v in vars(args).items()}, default=str), flush=True)
    if decoder == "words" and not bundle.can_decode_words:
        print(f"{args.model}: the bundle has no lexicon and word LM; tune --decoder phone_lm", file=sys.stderr)
        return 2
    if decoder == "phone_lm" and bundle.phone_lm_path is None:
        print(f"{args.model}: the bundle has no phone LM to tune", file=sys.stderr)
        return 2
    started = time.perf_counter()
    log_probs = _log_probs_of_source(bundle, args)
    if not log_probs:
        print("no utterance to tune on", file=sys.stderr)
        return 1
    if decoder == "words":
        result = tune_word_decoding(log_probs, bundle.inventory, bundle.lexicon_path, bundle.word_lm_path,
                                    args.lm_weights or DEFAULT_LM_WEIGHTS, args.word_scores,
                                    WordDecoderConfig(beam_size=bundle.settings.beam_size,
                                                      sil_score=bundle.settings.sil_score),
                                    args.min_disagreement, progress=True)
    else:
        result = tune_phone_decoding(log_probs, bundle.inventory, bundle.phone_lm_path,
                                     args.lm_weights or DEFAULT_PHONE_LM_WEIGHTS, args.insertion_bonuses,
                                     [m for m in args.silence_modes.split(",") if m], PhoneBeamConfig(),
                                     args.min_disagreement, progress=True)
    print(result.table())
    print(f"chosen: {json.dumps(result.best.settings)} ({len(log_probs)} utterances, "
          f"{time.perf_counter() - started:.1f} s)")
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
        out.with_suffix(".md").write_text(result.table() + "\n", encoding="utf-8")
    if args.update_bundle:
        bundle.update_settings(apply_tuning(bundle.settings, result))
        print(f"{bundle.directory / 'bundle.json'}: decoder settings updated")
    return 0


def apply_tuning(settings: Any, result: TuningResult) -> Any:
    """A copy of bundle DecoderSettings with the tuned values, `tuned` and `tuning` filled in."""
    chosen = result.best.settings
    summary = {"decoder": result.decoder, "rule": result.rule, "min_disagreement": result.min_disagreement,
               "utterances": result.utterances, "chosen": chosen, "lm_ppl": result.best.lm_ppl,
               "disagreement": result.best.disagreement, "score": result.best.score}
    if result.decoder == "words":
        updated = replace(settings, lm_weight=chosen["lm_weight"], word_score=chosen["word_score"])
        names = ["lm_weight", "word_score"]
    else:
        updated = replace(settings, phone_lm_weight=chosen["lm_weight"], insertion_bonus=chosen["insertion_bonus"],
                          silence=chosen["silence"])
        names = ["phone_lm_weight", "insertion_bonus", "silence"]
    tuning = {**settings.tuning, result.decoder: summary}
    return replace(updated, tuned=sorted(set(settings.tuned) | set(names)), tuning=tuning)


if __name__ == "__main__":
    sys.exit(main())
