"""TIMIT (LDC93S1) on disk -> manifests of the standard sets and the unpaired phone text.

Layout read: `<root>/TRAIN|TEST/DRn/SPEAKER/UTT.{WAV,PHN,WRD,TXT}`, names matched case-insensitively (LDC's
lower-case copy and the upper-case Kaggle copy both work); `*.WAV.wav` RIFF conversions beside the SPHERE files
are ignored. SPHERE audio is read directly by libsndfile; shorten-compressed or truncated files are skipped.

Sets (Kaldi / fairseq wav2vec-U "matched"; SA sentences excluded everywhere, as TIMIT's testset.doc says):
- train: every TRAIN speaker's SI + SX sentences (3696 utterances, 462 speakers);
- dev: the 50 TEST speakers of `timit_dev_speakers.txt` (400); test: the 24 core-test speakers (192).
A partial copy gives other counts; that is a warning, not an error.

Utterance ids are `<speaker>_<sentence>` in lower case (`fcjf0_si1027`, Kaldi's form), speaker = the speaker
folder (`fcjf0`). `phones` = the .PHN transcript folded 61 -> 39 with Kaldi's map (closures, pauses, `h#`,
`epi` -> `sil`; `q` deleted; consecutive `sil` kept as Kaldi and fairseq keep them). `words` = the .WRD words,
normalised (`asr_gan.text.normalize`); when the .WRD file is missing or not UTF-8, the .TXT text is used.

Unpaired text side, `DIR/train_text.phn` (39-set phones, one utterance per line):
- matched (the wav2vec-U paper's setting): the phone transcripts of the train audio, shuffled, so text and audio
  hold the same sentences but no line is paired with its recording.
- unmatched: the 3696 train utterances are split BY SENTENCE ID: every sentence id (one SI text, or one SX prompt
  read by several speakers) goes wholly to the audio part (`train.jsonl`) or to the text part
  (`train_text.phn`, `text_fraction` of the utterances, default 1/4 as fairseq's 3000/1000). So the text never
  holds a transcript of any training recording, nor another reading of the same prompt. This is stricter than
  fairseq's `timit_unmatched` lists, which split utterances (sharing 275 prompts between the parts) and use
  SA and a different validation set; our dev/test stay the standard ones so numbers compare across settings.

Writes `DIR/train.jsonl`, `DIR/dev.jsonl`, `DIR/test.jsonl`, `DIR/train_text.phn`, `DIR/prep_report.txt`, and
`DIR/{train,dev,test}.ref.ctm`: the 39-set phones of each utterance with their .PHN times (`utt_id 1 start
duration phone`, seconds), the reference row of the alignment pictures.

CLI: `python -m data_prep.timit --timit /data/TIMIT --out exp/timit/data [--setting matched|unmatched]`
"""

from __future__ import annotations

import argparse
import logging
import random
import re
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from asr_gan.audio.io import SAMPLE_RATE, AudioError
from asr_gan.manifest import Utterance, write_manifest
from asr_gan.text.normalize import normalize_sentence
from data_prep.audio_check import probe_audio
from data_prep.report import PrepReport
from data_prep.timit_labels import (
    CORE_TEST_SPEAKERS_PATH,
    DEV_SPEAKERS_PATH,
    TimitFormatError,
    fold_timit_phones,
    read_label_file,
    read_speaker_list,
    timed_phones,
)

log = logging.getLogger(__name__)


# Standard set sizes (utterances, speakers) without SA; see docs in /work/shared/reference/timit_layout.md.
STANDARD_SIZES = {"train": (3696, 462), "dev": (400, 50), "test": (192, 24)}
SETTINGS = ("matched", "unmatched")

_UTTERANCE_FILE = re.compile(r"^(s[aix]\d+)\.(wav|phn|wrd|txt)$")
_DIALECT = re.compile(r"^dr\d+$")
# .PHN ends may run a little past the audio in rounding; more than this means the audio lost samples.
_END_TOLERANCE_S = 0.01


# ------------------------------------------------------------------------------------------------- corpus scan


@dataclass
class TimitFiles:
    """The files of one TIMIT utterance, found case-insensitively."""

    usage: str  # "train" or "test"
    dialect: str  # "dr1"
    speaker: str  # "fcjf0"
    sentence: str  # "si1027"
    files: dict[str, Path] = field(default_factory=dict)  # "wav"/"phn"/"wrd"/"txt" -> path

    @property
    def utt_id(self) -> str:
        return f"{self.speaker}_{self.sentence}"

    @property
    def kind(self) -> str:
        """Sentence type: 'sa', 'si' or 'sx'."""
        return self.sentence[:2]


def find_timit_root(timit_dir: str | Path) -> Path:
    """The folder holding TRAIN/ and TEST/ (any case): `timit_dir` itself or one level below it."""
    timit_dir = Path(timit_dir)
    if not timit_dir.is_dir():
        raise FileNotFoundError(f"{timit_dir}: TIMIT folder not found (pass the folder holding TRAIN/ and TEST/)")
    candidates = [timit_dir] + sorted(p for p in timit_dir.iterdir() if p.is_dir())
    for candidate in candidates:
        names = {p.name.lower() for p in candidate.iterdir() if p.is_dir()}
        if {"train", "test"} & names:
            return candidate
    raise FileNotFoundError(
        f"{timit_dir}: no TRAIN/ or TEST/ folder here or one level below; pass the TIMIT folder "
        "(e.g. /data/LDC93S1/TIMIT) that holds TRAIN/DR1/... and TEST/DR1/..."
    )


def _subdirs(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir())


def scan_timit(timit_dir: str | Path, report: PrepReport) -> list[TimitFiles]:
    """Every utterance of the corpus with its files, sorted by (usage, speaker, sentence)."""
    root = find_timit_root(timit_dir)
    found: dict[tuple[str, str, str], TimitFiles] = {}
    for usage_dir in _subdirs(root):
        usage = usage_dir.name.lower()
        if usage not in ("train", "test"):
            continue
        for dialect_dir in _subdirs(usage_dir):
            if not _DIALECT.match(dialect_dir.name.lower()):
                continue
            for speaker_dir in _subdirs(dialect_dir):
                speaker = speaker_dir.name.lower()
                for path in sorted(speaker_dir.iterdir()):
                    # `SI681.WAV.wav` (a RIFF copy in the Kaggle corpus) does not match: one dot only.
                    match = _UTTERANCE_FILE.match(path.name.lower())
                    if not match or not path.is_file():
                        continue
                    sentence, extension = match.groups()
                    key = (usage, speaker, sentence)
                    utt = found.setdefault(key, TimitFiles(usage, dialect_dir.name.lower(), speaker, sentence))
                    if extension in utt.files:
                        report.note("duplicate file", f"{path}: second copy of {utt.files[extension]}; ignored")
                        continue
                    utt.files[extension] = path
    return [found[key] for key in sorted(found)]


def write_reference_ctm(path: Path, utts: list[Utterance], phn_files: dict[str, Path]) -> int:
    """`utt_id 1 start duration phone` lines of every utterance's .PHN (already read once by prepare_utterance)."""
    lines = []
    for utt in utts:
        for phone, start, end in timed_phones(phn_files[utt.utt_id]):
            lines.append(f"{utt.utt_id} 1 {start:.4f} {end - start:.4f} {phone}\n")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(lines), encoding="utf-8")
    tmp.replace(path)
    return len(utts)


def _words_of(utt: TimitFiles, report: PrepReport) -> str | None:
    """Normalised words from .WRD, else from .TXT; None (with the reason noted) when neither works."""
    problems = []
    for extension in ("wrd", "txt"):
        path = utt.files.get(extension)
        if path is None:
            problems.append(f"no .{extension.upper()} file")
            continue
        try:
            entries = read_label_file(path)
        except (TimitFormatError, OSError) as err:
            problems.append(str(err))
            continue
        words = normalize_sentence(" ".join(label for _, _, label in entries))
        if words:
            if problems:
                report.note("words from .TXT", f"{path}: used for words because {'; '.join(problems)}")
            return words
        problems.append(f"{path}: no words")
    report.skip("no usable words", f"{utt.utt_id}: {'; '.join(problems)}")
    return None


def prepare_utterance(utt: TimitFiles, report: PrepReport) -> Utterance | None:
    """One TIMIT utterance as a manifest entry (39-set phones), or None after reporting why it was skipped."""
    if "wav" not in utt.files or "phn" not in utt.files:
        missing = [f".{ext.upper()}" for ext in ("wav", "phn") if ext not in utt.files]
        any_file = next(iter(utt.files.values()))
        report.skip("missing file", f"{any_file.with_suffix('')}: no {' or '.join(missing)} file for {utt.utt_id}")
        return None
    wav, phn = utt.files["wav"], utt.files["phn"]
    try:
        info = probe_audio(wav, report)
    except AudioError as err:
        report.skip("unreadable audio", str(err))
        return None
    try:
        segments = read_label_file(phn)
        phones = fold_timit_phones([label for _, _, label in segments], to=39)
    except TimitFormatError as err:
        report.skip("unreadable .PHN", str(err))
        return None
    except ValueError as err:
        report.skip("unknown phone", f"{phn}: {err}")
        return None
    if not phones:
        report.skip("unreadable .PHN", f"{phn}: no phones left after folding")
        return None
    # .PHN sample numbers are at 16 kHz whatever the file's rate; compare in seconds.
    label_end_s = segments[-1][1] / SAMPLE_RATE
    audio_s = info.num_samples / info.sample_rate
    if label_end_s > audio_s + _END_TOLERANCE_S:
        report.skip(
            "audio shorter than .PHN",
            f"{wav}: {audio_s:.3f} s of audio but {phn.name} ends at {label_end_s:.3f} s (truncated copy?)",
        )
        return None
    words = _words_of(utt, report)
    if words is None:
        return None
    return Utterance(
        utt_id=utt.utt_id,
        audio=str(wav.resolve()),
        num_samples=info.num_samples,
        sample_rate=info.sample_rate,
        speaker=utt.speaker,
        words=words,
        phones=" ".join(phones),
    )


# ------------------------------------------------------------------------------------------------------ sets


def standard_sets(utts: list[TimitFiles]) -> dict[str, list[TimitFiles]]:
    """train / dev / test (core) members, SA excluded."""
    dev = set(read_speaker_list(DEV_SPEAKERS_PATH))
    core = set(read_speaker_list(CORE_TEST_SPEAKERS_PATH))
    sets: dict[str, list[TimitFiles]] = {"train": [], "dev": [], "test": []}
    for utt in utts:
        if utt.kind == "sa":
            continue
        if utt.usage == "train":
            sets["train"].append(utt)
        elif utt.speaker in dev:
            sets["dev"].append(utt)
        elif utt.speaker in core:
            sets["test"].append(utt)
    return sets


def split_by_sentence(
    utts: list[Utterance], text_fraction: float, seed: int
) -> tuple[list[Utterance], list[Utterance]]:
    """Split utterances into (audio part, text part) sharing no sentence id (`fcjf0_sx37` -> `sx37`).

    Sentence ids are shuffled with `seed` and moved to the text part until it holds about `text_fraction` of
    the utterances.
    """
    by_sentence: dict[str, list[Utterance]] = defaultdict(list)
    for utt in utts:
        by_sentence[utt.utt_id.rsplit("_", 1)[1]].append(utt)
    sentence_ids = sorted(by_sentence)
    random.Random(seed).shuffle(sentence_ids)
    target = round(text_fraction * len(utts))
    text_ids: set[str] = set()
    in_text = 0
    for sentence_id in sentence_ids:
        if in_text >= target:
            break
        text_ids.add(sentence_id)
        in_text += len(by_sentence[sentence_id])
    audio_part = [u for u in utts if u.utt_id.rsplit("_", 1)[1] not in text_ids]
    text_part = [u for u in utts if u.utt_id.rsplit("_", 1)[1] in text_ids]
    return audio_part, text_part


def _check_sizes(sets: dict[str, list[Utterance]], report: PrepReport, setting: str) -> None:
    for name, (standard_utts, standard_speakers) in STANDARD_SIZES.items():
        if setting == "unmatched" and name == "train":
            continue  # the audio part is a fraction of train by design
        utts = sets[name]
        speakers = len({u.speaker for u in utts})
        if len(utts) != standard_utts or speakers != standard_speakers:
            report.warn(
                f"{name}: {len(utts)} utterances of {speakers} speakers, the standard set has "
                f"{standard_utts} of {standard_speakers} (partial copy of TIMIT, or files skipped above)"
            )


# ------------------------------------------------------------------------------------------------ prepare


def prepare_timit(
    timit_dir: str | Path,
    out_dir: str | Path,
    setting: str = "matched",
    text_fraction: float = 0.25,
    seed: int = 0,
) -> dict[str, list[Utterance]]:
    """Prepare TIMIT into `out_dir` (see the module docstring); returns {"train", "dev", "test"} manifests.

    Args:
        timit_dir: the TIMIT folder (holding TRAIN/ and TEST/, any case) or its parent.
        out_dir: where the manifests, `train_text.phn` and `prep_report.txt` go.
        setting: "matched" or "unmatched" (text side; see the module docstring).
        text_fraction: unmatched only: share of train utterances given to the text side.
        seed: shuffling of the text side (and of the unmatched split).
    """
    if setting not in SETTINGS:
        raise ValueError(f"setting={setting!r}: expected one of {SETTINGS}")
    if not 0.0 < text_fraction < 1.0:
        raise ValueError(f"text_fraction={text_fraction}: expected a value between 0 and 1")
    out_dir = Path(out_dir)
    report = PrepReport(title=f"TIMIT {timit_dir} ({setting})")
    members = standard_sets(scan_timit(timit_dir, report))
    sets: dict[str, list[Utterance]] = {}
    for name, files in members.items():
        prepared = (prepare_utterance(utt, report) for utt in tqdm(files, desc=f"TIMIT {name}", unit="utt"))
        sets[name] = [utt for utt in prepared if utt is not None]

    if setting == "matched":
        text_utts = list(sets["train"])
    else:
        sets["train"], text_utts = split_by_sentence(sets["train"], text_fraction, seed)
        report.note(
            "unmatched split",
            f"train audio: {len(sets['train'])} utterances, text: {len(text_utts)} utterances, no shared sentence id",
        )
    _check_sizes(sets, report, setting)
    text_lines = [utt.phones for utt in text_utts if utt.phones]
    random.Random(seed).shuffle(text_lines)  # unpaired: line order says nothing about the audio

    out_dir.mkdir(parents=True, exist_ok=True)
    phn_files = {utt.utt_id: utt.files["phn"] for files in members.values() for utt in files if "phn" in utt.files}
    for name, utts in sets.items():
        report.counts[name] = write_manifest(out_dir / f"{name}.jsonl", utts)
        write_reference_ctm(out_dir / f"{name}.ref.ctm", utts, phn_files)
    text_path = out_dir / "train_text.phn"
    tmp = text_path.with_suffix(".phn.tmp")
    tmp.write_text("".join(line + "\n" for line in text_lines), encoding="utf-8")
    tmp.replace(text_path)
    report.counts["train_text.phn"] = len(text_lines)
    report.write(out_dir / "prep_report.txt")
    print(report.summary(), end="")
    return sets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_prep.timit", description=__doc__.split("\n")[0])
    parser.add_argument("--timit", required=True, type=Path, help="TIMIT folder holding TRAIN/ and TEST/")
    parser.add_argument("--out", required=True, type=Path, help="output folder for manifests and text")
    parser.add_argument("--setting", choices=SETTINGS, default="matched", help="text side (default matched)")
    parser.add_argument("--text-fraction", type=float, default=0.25, help="unmatched: share of train for text")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        sets = prepare_timit(args.timit, args.out, args.setting, args.text_fraction, args.seed)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not sets["train"]:
        print(f"error: no train utterance could be prepared from {args.timit}; see {args.out}/prep_report.txt",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
