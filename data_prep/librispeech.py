"""LibriSpeech on disk -> one manifest per subset, and the LM text as the unpaired text corpus.

Layout read: `<root>/<subset>/<reader>/<chapter>/<reader>-<chapter>-<nnnn>.flac` with one
`<reader>-<chapter>.trans.txt` per chapter (`<utt-id> <UPPER CASE WORDS>` lines). `root` is the `LibriSpeech`
folder or its parent. Utterance ids are LibriSpeech's own (`1272-128104-0000`), speaker = reader id
(`1272`; Kaldi's recipe uses one speaker per chapter instead), words = the transcript in lower case.
A flac without a transcript line is kept with `words=None` and noted (unsupervised training can use it).

LM text (`--lm-text librispeech-lm-norm.txt[.gz]`, or any text file): read as a stream, each line normalised
by `asr_gan.text.normalize.normalize_sentence` (lower case, one sentence per line) and written to
`DIR/text_corpus.txt`; lines that are empty after normalisation or not UTF-8 are dropped (the latter counted).
`--max-lm-sentences N` stops after N sentences (the full file has about 40 M lines).

Writes `DIR/<subset>.jsonl` per subset, `DIR/text_corpus.txt` (with --lm-text), `DIR/prep_report.txt`.

CLI: `python -m data_prep.librispeech --root /data/LibriSpeech --subset train-clean-100 --subset dev-clean
      --out exp/libri/data --lm-text /data/librispeech-lm-norm.txt.gz --max-lm-sentences 1000000`
"""

from __future__ import annotations

import argparse
import gzip
import logging
import re
import sys
from pathlib import Path
from typing import IO

from tqdm import tqdm

from asr_gan.audio.io import AudioError
from asr_gan.manifest import Utterance, write_manifest
from asr_gan.text.normalize import normalize_sentence, read_text_lines
from data_prep.audio_check import probe_audio
from data_prep.report import PrepReport

log = logging.getLogger(__name__)

SUBSETS = ("dev-clean", "dev-other", "test-clean", "test-other", "train-clean-100", "train-clean-360",
           "train-other-500")
_UTT_ID = re.compile(r"^\d+-\d+-\d+$")


def find_librispeech_root(root: str | Path, subsets: list[str]) -> Path:
    """The folder holding the subset folders: `root` itself or `root/LibriSpeech`."""
    root = Path(root)
    for candidate in (root, root / "LibriSpeech"):
        if candidate.is_dir() and any((candidate / subset).is_dir() for subset in subsets):
            return candidate
    present = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    raise FileNotFoundError(
        f"{root}: none of the subsets {subsets} found here or in {root / 'LibriSpeech'} "
        f"(folders present: {present or 'none'}); pass the LibriSpeech folder that holds e.g. dev-clean/"
    )


def _read_transcripts(chapter_dir: Path, report: PrepReport) -> dict[str, str]:
    """utt-id -> lower-case words from the chapter's *.trans.txt (bad lines reported and skipped)."""
    transcripts: dict[str, str] = {}
    for trans in sorted(chapter_dir.glob("*.trans.txt")):
        problems: list[str] = []
        for lineno, line in read_text_lines(trans, problems):
            parts = line.split(None, 1)
            if not parts:
                continue
            if not _UTT_ID.match(parts[0]):
                report.skip("bad transcript line", f"{trans}:{lineno}: expected '<reader>-<chapter>-<n> WORDS'")
                continue
            words = " ".join(parts[1].lower().split()) if len(parts) > 1 else ""
            transcripts[parts[0]] = words
        for problem in problems:
            report.skip("not UTF-8", problem)
    return transcripts


def prepare_subset(subset_dir: Path, report: PrepReport) -> list[Utterance]:
    """Manifest entries of one subset folder, sorted by utterance id."""
    flacs = sorted(subset_dir.glob("*/*/*.flac"))
    chapters = sorted({flac.parent for flac in flacs} | {t.parent for t in subset_dir.glob("*/*/*.trans.txt")})
    transcripts: dict[str, str] = {}
    for chapter in chapters:
        transcripts.update(_read_transcripts(chapter, report))
    utterances = []
    audio_ids = set()
    for flac in tqdm(flacs, desc=subset_dir.name, unit="utt"):
        utt_id = flac.stem
        audio_ids.add(utt_id)
        try:
            info = probe_audio(flac, report)
        except AudioError as err:
            report.skip("unreadable audio", str(err))
            continue
        words = transcripts.get(utt_id)
        if words is None:
            report.note("no transcript",
                        f"{flac}: no line for {utt_id} in {flac.parent}/*.trans.txt; kept without words")
        utterances.append(
            Utterance(
                utt_id=utt_id,
                audio=str(flac.resolve()),
                num_samples=info.num_samples,
                sample_rate=info.sample_rate,
                speaker=utt_id.split("-")[0],
                words=words or None,
            )
        )
    for utt_id in sorted(set(transcripts) - audio_ids):
        reader, chapter, _ = utt_id.split("-")
        report.skip("missing file", f"{subset_dir / reader / chapter / (utt_id + '.flac')}: transcript without audio")
    return utterances


def _open_text(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def normalize_lm_text(
    source: str | Path, target: str | Path, report: PrepReport, max_sentences: int | None = None
) -> int:
    """Stream `source` (plain or .gz) into `target`, one normalised sentence per line. Returns the count."""
    source, target = Path(source), Path(target)
    if not source.is_file():
        raise FileNotFoundError(f"{source}: LM text not found (pass --lm-text librispeech-lm-norm.txt.gz)")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".tmp")
    written = 0
    undecodable = 0
    try:
        with _open_text(source) as raw_lines, open(tmp, "w", encoding="utf-8") as out:
            for lineno, raw in enumerate(tqdm(raw_lines, desc="LM text", unit=" lines", mininterval=2.0), 1):
                if max_sentences is not None and written >= max_sentences:
                    break
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    undecodable += 1
                    if undecodable <= 20:  # a whole mis-encoded file would otherwise flood the report
                        report.skip("LM line not UTF-8", f"{source}:{lineno}: not UTF-8; line dropped")
                    continue
                sentence = normalize_sentence(line)
                if sentence:
                    out.write(sentence + "\n")
                    written += 1
    except (OSError, EOFError) as err:  # truncated .gz: keep what was read, say so
        report.warn(f"{source}: read stopped early ({err}); {written} sentences kept")
    if undecodable > 20:
        report.warn(f"{source}: {undecodable} lines were not UTF-8 and were dropped (first 20 listed above)")
    tmp.replace(target)
    return written


def prepare_librispeech(
    root: str | Path,
    subsets: list[str],
    out_dir: str | Path,
    lm_text: str | Path | None = None,
    max_lm_sentences: int | None = None,
) -> dict[str, list[Utterance]]:
    """Prepare LibriSpeech subsets (and optionally the LM text) into `out_dir`; returns {subset: manifest}.

    Raises:
        FileNotFoundError: no subset folder found, a requested subset missing, or the LM text missing.
    """
    out_dir = Path(out_dir)
    base = find_librispeech_root(root, subsets)
    missing = [s for s in subsets if not (base / s).is_dir()]
    if missing:
        raise FileNotFoundError(f"{base}: subset folder(s) {missing} not found; download them from OpenSLR 12")
    report = PrepReport(title=f"LibriSpeech {base} ({', '.join(subsets)})")
    for subset in subsets:
        if subset not in SUBSETS:
            report.warn(f"{subset}: not one of LibriSpeech's subsets {SUBSETS}; prepared anyway")
    manifests = {}
    for subset in subsets:
        manifests[subset] = prepare_subset(base / subset, report)
        report.counts[subset] = write_manifest(out_dir / f"{subset}.jsonl", manifests[subset])
        if not manifests[subset]:
            report.warn(f"{base / subset}: no utterance prepared")
    if lm_text is not None:
        report.counts["text_corpus.txt"] = normalize_lm_text(lm_text, out_dir / "text_corpus.txt", report,
                                                             max_lm_sentences)
    report.write(out_dir / "prep_report.txt")
    print(report.summary(), end="")
    return manifests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_prep.librispeech", description=__doc__.split("\n")[0])
    parser.add_argument("--root", required=True, type=Path, help="LibriSpeech folder (or its parent)")
    parser.add_argument("--subset", action="append", required=True, help="subset folder name; repeat for more")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--lm-text", type=Path, help="LM text, e.g. librispeech-lm-norm.txt.gz")
    parser.add_argument("--max-lm-sentences", type=int, help="stop the LM text after N sentences")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        manifests = prepare_librispeech(args.root, args.subset, args.out, args.lm_text, args.max_lm_sentences)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0 if all(manifests.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
