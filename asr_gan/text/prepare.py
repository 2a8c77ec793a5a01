"""Build everything under a recipe's `text/` folder (docs/DESIGN.md) from unpaired text and manifests.

Word mode (`corpus_text`): normalise the text corpus -> `train_text.wrd`; pronounce its vocabulary
(CMUdict, then espeak-ng G2P) -> `lexicon.txt`; phonemise with `<SIL>` at the start and end with
probabilities `sil_start_prob` and `sil_end_prob` and between words with probability `sil_prob`, or with
the probabilities that `silence_stats` (`python -m asr_gan.features.silence_stats` on the training audio)
measures -> `train_text.phn`; `phones.txt`; phone LM on `train_text.phn`; word LM on
`train_text.wrd`.
Phone mode (`phone_text`, TIMIT): the text side is already phones with silence `sil`; no lexicon and no
word LM; `phones.txt`, `train_text.phn` and the phone LM come from the phone text.

Beyond DESIGN.md's list, word mode keeps `train_text.wrd` (the normalised corpus, the word LM's input),
`train_text.lines` (its source line numbers, for reports) and `no_pronunciation.txt`.

Both modes write per manifest split `<split>.wrd` and `<split>.phn` (`utt_id tokens...`). Reference
phones carry NO silence token: manifest `phones` when present (TIMIT keeps its `sil`), else the words
pronounced through the same CMUdict/G2P as the text side.

Sentences lost on the way are reported, never silently: lines that are not UTF-8 (file:line), sentences
with a word that gets no pronunciation (listed in `no_pronunciation.txt` as `file:line<TAB>word`), and
sentences holding a phone rarer than `min_phone_count`. A summary goes to `prep_report.json`.

Idempotent: a stage whose outputs exist, are newer than its inputs and were made with the same
settings (`.stamps/<stage>.json`) is skipped and says so; `force=True` redoes everything.
"""

from __future__ import annotations

import json
import logging
import random
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm import tqdm

from asr_gan.manifest import read_manifest
from asr_gan.text.lexicon import Lexicon, Pronouncer
from asr_gan.text.lm import build_lm
from asr_gan.text.normalize import normalize_sentence, read_text_lines
from asr_gan.text.phones import DEFAULT_SIL_PROB, SILENCE, TIMIT_SILENCE, PhoneInventory, add_silences

log = logging.getLogger(__name__)


@dataclass
class TextPrepConfig:
    """Settings of `python -m asr_gan.text`; exactly one of `corpus_text` / `phone_text`."""

    out: Path
    corpus_text: Path | None = None
    phone_text: Path | None = None
    manifests: list[Path] = field(default_factory=list)
    sil_prob: float = DEFAULT_SIL_PROB
    sil_start_prob: float = 1.0
    sil_end_prob: float = 1.0
    # A silence_stats JSON sets all three silence probabilities from the audio (silence_probabilities).
    silence_stats: Path | None = None
    # fairseq's prepare_text.sh drops phones seen < 1000 times in its lexicon; 1 keeps every phone,
    # which suits the small demo corpus. Raise it for LibriSpeech-sized text.
    min_phone_count: int = 1
    phone_lm_order: int = 4
    word_lm_order: int = 3
    seed: int = 1
    use_g2p: bool = True
    lm_memory: str = "10%"
    force: bool = False

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self.manifests = [Path(m) for m in self.manifests]
        self.corpus_text = Path(self.corpus_text) if self.corpus_text else None
        self.phone_text = Path(self.phone_text) if self.phone_text else None
        self.silence_stats = Path(self.silence_stats) if self.silence_stats else None
        if (self.corpus_text is None) == (self.phone_text is None):
            raise ValueError("give exactly one of --corpus-text (words) or --phone-text (phones, TIMIT)")
        if self.phone_text is not None and self.silence_stats is not None:
            raise ValueError("--silence-stats is for word mode: in phone mode the silences come with the phone text")


def silence_probabilities(config: TextPrepConfig, words_per_sentence: list[int]) -> dict[str, float | str]:
    """The text's silence probabilities: the config's, or those that match `config.silence_stats`.

    From the stats: edge silence as often as utterances start (end) with silence, and a silence token after
    a word with probability inner pauses per utterance / word gaps per sentence (capped at 1), which assumes
    that the text's sentences are about as long as the audio's utterances.
    """
    if config.silence_stats is None:
        return {"start": config.sil_start_prob, "end": config.sil_end_prob, "between_words": config.sil_prob,
                "source": "settings"}
    path = config.silence_stats
    if not path.is_file():
        raise FileNotFoundError(f"{path}: silence statistics not found (python -m asr_gan.features.silence_stats)")
    try:
        stats = json.loads(path.read_text(encoding="utf-8"))
        leading, trailing, inner = (float(stats[k]) for k in ("leading", "trailing", "inner_per_utterance"))
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path}: not a silence_stats report ({type(err).__name__}: {err})") from None
    if not (0 <= leading <= 1 and 0 <= trailing <= 1 and inner >= 0):
        raise ValueError(f"{path}: leading/trailing must lie in [0, 1] and inner_per_utterance be >= 0")
    gaps = sum(max(0, n - 1) for n in words_per_sentence) / max(1, len(words_per_sentence))
    between = min(1.0, inner / gaps) if gaps > 0 else 0.0
    return {"start": leading, "end": trailing, "between_words": round(between, 4), "source": str(path)}


@dataclass
class TextPrepReport:
    sentences_read: int = 0
    lines_not_utf8: int = 0
    sentences_without_pronunciation: int = 0
    words_without_pronunciation: int = 0
    sentences_with_rare_phones: int = 0
    dropped_phones: dict[str, int] = field(default_factory=dict)
    sentences_written: int = 0
    lexicon_words: int = 0
    lexicon_from_g2p: int = 0
    num_phones: int = 0
    references: dict[str, int] = field(default_factory=dict)
    references_skipped: dict[str, int] = field(default_factory=dict)
    silence: dict[str, float | str] = field(default_factory=dict)
    stages_skipped: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class _Stage:
    """Freshness check for one stage: outputs newer than inputs, settings unchanged."""

    def __init__(self, out: Path, name: str, inputs: list[Path], outputs: list[Path], settings: dict, force: bool):
        self.name, self.inputs, self.outputs = name, inputs, outputs
        self.settings = json.loads(json.dumps(settings, default=str))
        self.stamp = out / ".stamps" / f"{name}.json"
        self.force = force

    def fresh(self) -> bool:
        if self.force or not self.stamp.is_file() or not all(p.is_file() for p in self.outputs):
            return False
        if json.loads(self.stamp.read_text()) != self.settings:
            return False
        oldest_output = min(p.stat().st_mtime for p in self.outputs)
        return all(p.stat().st_mtime <= oldest_output for p in self.inputs)

    def done(self) -> None:
        self.stamp.parent.mkdir(parents=True, exist_ok=True)
        self.stamp.write_text(json.dumps(self.settings, indent=1))


def _run_stage(stage: _Stage, report: TextPrepReport, work) -> None:
    if stage.fresh():
        print(f"[text] {stage.name}: outputs up to date, skipped (--force to redo)")
        report.stages_skipped.append(stage.name)
        return
    print(f"[text] {stage.name}: building {', '.join(p.name for p in stage.outputs)}")
    work()
    stage.done()


def _normalise_corpus(config: TextPrepConfig, report: TextPrepReport) -> None:
    """Corpus text -> `train_text.wrd` (normalised sentences) and `.train_text.lines` (source line numbers)."""
    assert config.corpus_text is not None
    out = config.out
    with open(out / "train_text.wrd.tmp", "w", encoding="utf-8") as words, open(
        out / "train_text.lines.tmp", "w"
    ) as lines:
        for lineno, line in tqdm(read_text_lines(config.corpus_text, report.problems), desc="normalise", unit=" lines"):
            sentence = normalize_sentence(line)
            if sentence:
                words.write(sentence + "\n")
                lines.write(f"{lineno}\n")
    (out / "train_text.wrd.tmp").replace(out / "train_text.wrd")
    (out / "train_text.lines.tmp").replace(out / "train_text.lines")


def _phonemise_corpus(config: TextPrepConfig, report: TextPrepReport, pronouncer: Pronouncer) -> None:
    """`train_text.wrd` -> lexicon.txt, phones.txt, train_text.phn, no_pronunciation.txt."""
    out = config.out
    sentences = (out / "train_text.wrd").read_text(encoding="utf-8").splitlines()
    source_lines = (out / "train_text.lines").read_text().split()
    vocabulary = Counter(w for s in sentences for w in s.split())
    print(f"[text] {len(sentences)} sentences, {len(vocabulary)} distinct words; pronouncing (CMUdict, espeak-ng G2P)")
    pronouncer.add_words(sorted(vocabulary))
    lexicon = pronouncer.lexicon

    # Pass 1: phone counts over sentences whose words all have a pronunciation.
    counts: Counter[str] = Counter()
    missing_at: list[str] = []
    for sentence, lineno in zip(sentences, source_lines):
        words = sentence.split()
        missing = [w for w in words if w not in lexicon]
        if missing:
            missing_at.extend(f"{config.corpus_text}:{lineno}\t{w}" for w in missing)
            report.sentences_without_pronunciation += 1
            continue
        for w in words:
            counts.update(lexicon[w])
    (out / "no_pronunciation.txt").write_text("".join(m + "\n" for m in missing_at), encoding="utf-8")
    report.words_without_pronunciation = len(pronouncer.missing)
    if pronouncer.missing:
        shown = ", ".join(sorted(pronouncer.missing)[:10])
        print(f"[text] {len(pronouncer.missing)} words without pronunciation ({shown} ...): "
              f"{report.sentences_without_pronunciation} sentences skipped, see {out / 'no_pronunciation.txt'}")

    inventory = PhoneInventory.from_counts(counts, config.min_phone_count, SILENCE)
    report.dropped_phones = {p: c for p, c in counts.items() if p not in inventory}
    if report.dropped_phones:
        print(f"[text] phones rarer than {config.min_phone_count} dropped: {report.dropped_phones}")

    # Pass 2: write the phonemised text with silences (seeded: the same corpus gives the same file).
    silence = silence_probabilities(config, [len(s.split()) for s in sentences])
    report.silence = silence
    print(f"[text] <SIL> at the start with probability {silence['start']}, at the end {silence['end']}, "
          f"between words {silence['between_words']} (from {silence['source']})")
    rng = random.Random(config.seed)
    report.sentences_written = 0
    with open(out / "train_text.phn.tmp", "w", encoding="utf-8") as f:
        for sentence in tqdm(sentences, desc="phonemise", unit=" sent"):
            words = sentence.split()
            if any(w not in lexicon for w in words):
                continue
            prons = [lexicon[w] for w in words]
            if any(p not in inventory for pron in prons for p in pron):
                report.sentences_with_rare_phones += 1
                continue
            phones = add_silences(prons, float(silence["between_words"]), rng, start_prob=float(silence["start"]),
                                  end_prob=float(silence["end"]))
            f.write(" ".join(phones) + "\n")
            report.sentences_written += 1
    if report.sentences_written == 0:
        raise ValueError(f"{config.corpus_text}: no sentence could be phonemised; see {out / 'no_pronunciation.txt'}")
    (out / "train_text.phn.tmp").replace(out / "train_text.phn")

    # The decoding lexicon: corpus words whose phones all survived the inventory filter.
    kept = Lexicon({w: lexicon[w] for w in vocabulary if w in lexicon and all(p in inventory for p in lexicon[w])})
    kept.save(out / "lexicon.txt")
    report.lexicon_words = len(kept)
    report.lexicon_from_g2p = sum(1 for w in kept.prons if lexicon.sources.get(w) == "g2p")
    inventory.save(out / "phones.txt")
    report.num_phones = len(inventory)


def _prepare_phone_text(config: TextPrepConfig, report: TextPrepReport) -> None:
    """Phone mode: phone text -> phones.txt (silence `sil`) and train_text.phn, rare phones filtered."""
    assert config.phone_text is not None
    out = config.out
    sentences = []
    for _, line in read_text_lines(config.phone_text, report.problems):
        phones = line.split()
        if phones:
            sentences.append(phones)
    report.sentences_read = len(sentences)
    counts = Counter(p for s in sentences for p in s)
    inventory = PhoneInventory.from_counts(counts, config.min_phone_count, TIMIT_SILENCE)
    report.dropped_phones = {p: c for p, c in counts.items() if p not in inventory}
    kept = [s for s in sentences if all(p in inventory for p in s)]
    report.sentences_with_rare_phones = len(sentences) - len(kept)
    if not kept:
        raise ValueError(f"{config.phone_text}: no phone sentence left after the min-count filter")
    report.sentences_written = len(kept)
    (out / "train_text.phn").write_text("".join(" ".join(s) + "\n" for s in kept), encoding="utf-8")
    inventory.save(out / "phones.txt")
    report.num_phones = len(inventory)


def _write_references(manifest: Path, config: TextPrepConfig, report: TextPrepReport,
                      pronouncer: Pronouncer | None) -> None:
    """`<split>.wrd` and `<split>.phn` for one manifest; utterances without usable text are reported."""
    split = manifest.name.removesuffix(".jsonl")
    utterances = read_manifest(manifest)
    if pronouncer is not None:
        pronouncer.add_words(w for u in utterances if u.words for w in normalize_sentence(u.words).split())
    wrd_lines, phn_lines, skipped = [], [], 0
    for utt in utterances:
        words = normalize_sentence(utt.words) if utt.words else ""
        if words:
            wrd_lines.append(f"{utt.utt_id} {words}\n")
        if utt.phones and utt.phones.split():
            phones = utt.phones.split()
        elif words and pronouncer is not None and (prons := pronouncer.sentence_prons(words)) is not None:
            phones = [p for pron in prons for p in pron]
        else:
            skipped += 1
            message = (f"{manifest}: {utt.utt_id}: no reference phones "
                       "(no phones field, words unpronounceable or absent)")
            log.warning(message)
            report.problems.append(message)
            continue
        phn_lines.append(f"{utt.utt_id} {' '.join(phones)}\n")
    (config.out / f"{split}.wrd").write_text("".join(wrd_lines), encoding="utf-8")
    (config.out / f"{split}.phn").write_text("".join(phn_lines), encoding="utf-8")
    report.references[split] = len(phn_lines)
    report.references_skipped[split] = skipped


def prepare_text(config: TextPrepConfig) -> TextPrepReport:
    """Write the `text/` folder for `config` (see the module docstring); returns what happened."""
    out = config.out
    out.mkdir(parents=True, exist_ok=True)
    report = TextPrepReport()
    pronouncer = Pronouncer(use_g2p=config.use_g2p) if config.corpus_text else None
    settings = {k: v for k, v in asdict(config).items() if k not in ("force", "out", "manifests", "lm_memory")}
    # Settings at their defaults stay out of the stamps, so folders made before the edge options stay fresh.
    for key, default in (("sil_start_prob", 1.0), ("sil_end_prob", 1.0), ("silence_stats", None)):
        if settings[key] == default:
            del settings[key]

    if config.corpus_text is not None:
        _run_stage(
            _Stage(out, "normalise", [config.corpus_text], [out / "train_text.wrd", out / "train_text.lines"],
                   {"corpus_text": str(config.corpus_text)}, config.force),
            report, lambda: _normalise_corpus(config, report),
        )
        _run_stage(
            _Stage(out, "phonemise", [out / "train_text.wrd", *filter(None, [config.silence_stats])],
                   [out / n for n in ("lexicon.txt", "phones.txt", "train_text.phn", "no_pronunciation.txt")],
                   settings, config.force),
            report, lambda: _phonemise_corpus(config, report, pronouncer),
        )
    else:
        _run_stage(
            _Stage(out, "phone_text", [config.phone_text], [out / "phones.txt", out / "train_text.phn"],
                   settings, config.force),
            report, lambda: _prepare_phone_text(config, report),
        )

    for manifest in config.manifests:
        split = manifest.name.removesuffix(".jsonl")
        _run_stage(
            _Stage(out, f"references_{split}", [manifest],
                   [out / f"{split}.wrd", out / f"{split}.phn"], {"manifest": str(manifest), "g2p": config.use_g2p},
                   config.force),
            report, lambda m=manifest: _write_references(m, config, report, pronouncer),
        )

    _run_stage(
        _Stage(out, "phone_lm", [out / "train_text.phn"], [out / "phone_lm.arpa", out / "phone_lm.bin"],
               {"order": config.phone_lm_order}, config.force),
        report, lambda: build_lm(out / "train_text.phn", out / "phone_lm.arpa", config.phone_lm_order,
                                 out / "phone_lm.bin", config.lm_memory),
    )
    if config.corpus_text is not None:
        _run_stage(
            _Stage(out, "word_lm", [out / "train_text.wrd"], [out / "word_lm.arpa", out / "word_lm.bin"],
                   {"order": config.word_lm_order}, config.force),
            report, lambda: build_lm(out / "train_text.wrd", out / "word_lm.arpa", config.word_lm_order,
                                     out / "word_lm.bin", config.lm_memory),
        )

    report.lines_not_utf8 = sum(1 for p in report.problems if "not UTF-8" in p)
    if (out / "train_text.wrd").is_file():
        report.sentences_read = sum(1 for _ in open(out / "train_text.wrd", encoding="utf-8"))
    report.num_phones = len(PhoneInventory.load(out / "phones.txt"))
    # A rerun that skips stages keeps the figures of the run that built them.
    report_path = out / "prep_report.json"
    merged = asdict(report)
    if report_path.is_file():
        previous = json.loads(report_path.read_text(encoding="utf-8"))
        for key, value in previous.items():
            if key in merged and not merged[key] and key != "stages_skipped":
                merged[key] = value
            elif isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = {**value, **merged[key]}
    report_path.write_text(json.dumps(merged, indent=1), encoding="utf-8")
    return report
