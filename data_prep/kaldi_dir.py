"""A Kaldi data directory (`wav.scp`, `text`, `utt2spk`, optional `segments`) -> one manifest.

- `wav.scp` values are plain paths or commands ending in `|` whose stdout is a wav. Known commands over one
  file (`sph2pipe [-f wav] [-p] X |`, `flac -c -d -s X |`, `sox X -t wav - |`, `cat X |`) are resolved to the
  file itself when libsndfile reads it (SPHERE, FLAC, wav all work), so nothing is copied. Any other command,
  or a known one with options that change the audio (`sph2pipe -t` time range, `-c` channel), or a file
  libsndfile cannot decode (shorten-compressed SPHERE) is RUN through the shell and its wav output is kept in
  a cache folder beside the manifest (`<manifest>.wav_cache/<recording>.wav`); an existing readable cached
  file is reused, so a rerun does not run the commands again.
- `segments` (`utt rec begin end`, seconds; `end = -1` = to the end of the recording) become `Utterance.start`/
  `end` over the recording's file. Without `segments` every `wav.scp` key is an utterance.
- `text` gives `words` (or, with `--phones-from-text`, `phones`: a data dir of phone transcripts like Kaldi's
  TIMIT recipe). `text` is optional (unlabelled audio); an utterance without a text line is kept, noted.
- `utt2spk` gives the speaker; when it is missing, speaker = utterance id (Kaldi's advice), noted.
- Bad entries (unreadable audio, failing command, segment outside its recording, non-UTF-8 line) are skipped
  and reported; the summary goes to stdout and `<manifest stem>.prep_report.txt` beside the manifest.

CLI: `python -m data_prep.kaldi_dir --data-dir data/train --out exp/x/data/train.jsonl [--phones-from-text]`
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from asr_gan.audio.io import AudioError, AudioInfo
from asr_gan.manifest import Utterance, write_manifest
from asr_gan.text.normalize import read_text_lines
from data_prep.audio_check import probe_audio
from data_prep.report import PrepReport

log = logging.getLogger(__name__)

COMMAND_TIMEOUT_S = 300
# A segment may end this far past its recording (rounding in segment files) before it counts as outside.
_END_TOLERANCE_S = 0.02
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")
# Options of the known commands that take a value, and options that change the audio (then we run the command).
_OPTIONS_WITH_VALUE = {"sph2pipe": {"-f", "-c", "-t", "-s"}, "flac": set(), "sox": {"-t"}, "cat": set()}
_CHANGING_OPTIONS = {"sph2pipe": {"-t", "-c", "-s"}}


@dataclass
class Recording:
    """A usable `wav.scp` entry: the file to read and its header facts."""

    recording_id: str
    path: Path
    info: AudioInfo


def read_kaldi_table(path: Path, report: PrepReport) -> dict[str, str]:
    """`<key> <value...>` lines of a Kaldi table file; non-UTF-8 lines and repeated keys are reported."""
    problems: list[str] = []
    table: dict[str, str] = {}
    for lineno, line in read_text_lines(path, problems):
        parts = line.strip().split(None, 1)
        if not parts:
            continue
        key, value = parts[0], (parts[1].strip() if len(parts) > 1 else "")
        if key in table:
            report.skip("repeated key", f"{path}:{lineno}: key {key} repeated; the first line is used")
            continue
        table[key] = value
    for problem in problems:
        report.skip("not UTF-8", problem)
    return table


def resolve_known_command(command: str) -> Path | None:
    """The single input file of a known pass-through command (`sph2pipe -f wav X.WAV |`), else None."""
    try:
        tokens = shlex.split(command.rstrip().removesuffix("|"))
    except ValueError:
        return None
    if not tokens:
        return None
    program = os.path.basename(tokens[0])
    if program not in _OPTIONS_WITH_VALUE:
        return None
    if program == "sox":
        # Only `sox X -t wav -`: anything more (effects, rate changes) must run.
        return Path(tokens[1]) if len(tokens) == 5 and tokens[2:] == ["-t", "wav", "-"] else None
    files = []
    args = iter(tokens[1:])
    for token in args:
        if token.startswith("-") and token != "-":
            if token in _CHANGING_OPTIONS.get(program, set()):
                return None
            if token in _OPTIONS_WITH_VALUE[program]:
                next(args, None)
            continue
        files.append(token)
    return Path(files[0]) if len(files) == 1 else None


def _cache_path(cache_dir: Path, recording_id: str) -> Path:
    return cache_dir / (_UNSAFE_NAME.sub("_", recording_id) + ".wav")


def run_wav_command(command: str, target: Path) -> None:
    """Run a `wav.scp` pipe command and store its stdout in `target` (atomically).

    Raises:
        AudioError: the command failed or timed out (message names the target and the command's stderr).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".wav.tmp")
    with open(tmp, "wb") as out:
        try:
            done = subprocess.run(
                command.rstrip().removesuffix("|"), shell=True, stdout=out, stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL, timeout=COMMAND_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            tmp.unlink(missing_ok=True)
            raise AudioError(f"{target}: command timed out after {COMMAND_TIMEOUT_S} s: {command}") from None
    if done.returncode != 0:
        tmp.unlink(missing_ok=True)
        stderr = done.stderr.decode("utf-8", errors="replace").strip().splitlines()
        raise AudioError(
            f"{target}: command failed (exit {done.returncode}): {command}"
            + (f" ({stderr[-1]})" if stderr else "")
        )
    tmp.replace(target)


def load_recording(recording_id: str, value: str, cache_dir: Path, report: PrepReport) -> Recording:
    """Resolve one `wav.scp` value to a readable file (see the module docstring).

    Raises:
        AudioError: the file is unreadable, or the command fails or writes unreadable audio.
    """
    if not value.endswith("|"):
        path = Path(value)
        if not path.exists() and re.search(r"\.ark:\d+$", value):
            raise AudioError(f"{value}: wav.scp entry {recording_id} points into an ark file; not supported "
                             "(write the audio out with `wav-copy` first)")
        return Recording(recording_id, path, probe_audio(path, report))
    resolved = resolve_known_command(value)
    if resolved is not None:
        try:
            return Recording(recording_id, resolved, probe_audio(resolved, report))
        except AudioError as err:
            if not resolved.is_file():
                raise
            log.info("%s; running the command instead", err)
    cached = _cache_path(cache_dir, recording_id)
    if cached.is_file():
        try:
            return Recording(recording_id, cached, probe_audio(cached, report))
        except AudioError:
            cached.unlink()  # a broken leftover of an interrupted run: make it again
    run_wav_command(value, cached)
    try:
        info = probe_audio(cached, report)
    except AudioError as err:
        cached.unlink(missing_ok=True)
        raise AudioError(f"{err} (written by: {value})") from None
    return Recording(recording_id, cached, info)


def prepare_kaldi_dir(
    data_dir: str | Path,
    out_manifest: str | Path,
    phones_from_text: bool = False,
    cache_dir: str | Path | None = None,
) -> list[Utterance]:
    """Convert a Kaldi data dir to a manifest at `out_manifest`; returns the utterances written.

    Args:
        data_dir: folder with `wav.scp` (required), `text`, `utt2spk`, `segments` (optional).
        out_manifest: JSONL path to write.
        phones_from_text: `text` holds phone transcripts: store them as `phones`, not `words`.
        cache_dir: where piped commands' wav output goes (default `<out_manifest>.wav_cache/`).

    Raises:
        FileNotFoundError: `data_dir` or its `wav.scp` is missing.
    """
    data_dir, out_manifest = Path(data_dir), Path(out_manifest)
    wav_scp = data_dir / "wav.scp"
    if not wav_scp.is_file():
        raise FileNotFoundError(f"{wav_scp}: not found; pass a Kaldi data dir holding wav.scp (and text, utt2spk)")
    cache = Path(cache_dir) if cache_dir else out_manifest.with_name(out_manifest.name + ".wav_cache")
    report = PrepReport(title=f"Kaldi data dir {data_dir}")

    tables = {}
    for name in ("text", "utt2spk", "segments"):
        tables[name] = read_kaldi_table(data_dir / name, report) if (data_dir / name).is_file() else None
    if tables["utt2spk"] is None:
        report.note("no utt2spk", f"{data_dir / 'utt2spk'}: missing; speaker = utterance id")
    if tables["text"] is None:
        report.note("no text", f"{data_dir / 'text'}: missing; utterances have no transcript")

    wav_table = read_kaldi_table(wav_scp, report)
    recordings: dict[str, Recording] = {}
    for recording_id, value in tqdm(wav_table.items(), desc="wav.scp", unit="rec"):
        try:
            recordings[recording_id] = load_recording(recording_id, value, cache, report)
        except AudioError as err:
            report.skip("unreadable audio", f"{err} [wav.scp: {recording_id}]")

    # (utt_id, recording_id, start, end) for every utterance the data dir defines.
    spans: list[tuple[str, str, float, float | None]] = []
    if tables["segments"] is None:
        spans = [(key, key, 0.0, None) for key in wav_table]
    else:
        for utt_id, value in tables["segments"].items():
            parts = value.split()
            try:
                recording_id, start, end = parts[0], float(parts[1]), float(parts[2])
            except (IndexError, ValueError):
                report.skip("bad segment",
                            f"{data_dir / 'segments'}: {utt_id} {value!r}: expected '<rec> <begin> <end>'")
                continue
            spans.append((utt_id, recording_id, start, None if end == -1 else end))

    utterances = []
    for utt_id, recording_id, start, end in spans:
        recording = recordings.get(recording_id)
        if recording is None:
            report.skip("no audio", f"{data_dir / 'wav.scp'}: no usable recording {recording_id} for {utt_id}")
            continue
        length_s = recording.info.num_samples / recording.info.sample_rate
        if start < 0 or (end is not None and end <= start) or start >= length_s or (
            end is not None and end > length_s + _END_TOLERANCE_S
        ):
            report.skip("segment outside recording",
                        f"{data_dir / 'segments'}: {utt_id} {start}-{end} s, but {recording.path} "
                        f"lasts {length_s:.3f} s")
            continue
        transcript = tables["text"].get(utt_id) if tables["text"] is not None else None
        if tables["text"] is not None and transcript is None:
            report.note("no transcript", f"{data_dir / 'text'}: no line for {utt_id}; kept without transcript")
        speaker = tables["utt2spk"].get(utt_id) if tables["utt2spk"] is not None else None
        if tables["utt2spk"] is not None and speaker is None:
            report.note("no speaker", f"{data_dir / 'utt2spk'}: no line for {utt_id}; speaker = utterance id")
        transcript = " ".join(transcript.split()) if transcript else None
        utterances.append(
            Utterance(
                utt_id=utt_id,
                audio=str(recording.path.resolve()),
                num_samples=recording.info.num_samples,
                sample_rate=recording.info.sample_rate,
                speaker=speaker or utt_id,
                words=None if phones_from_text else transcript,
                phones=transcript if phones_from_text else None,
                start=start,
                end=None if end is None else min(end, length_s),
            )
        )
    if tables["text"] is not None:
        defined = {span[0] for span in spans}
        for utt_id in sorted(set(tables["text"]) - defined):
            report.note("text without audio", f"{data_dir / 'text'}: {utt_id} has no wav.scp/segments entry; ignored")

    utterances.sort(key=lambda u: u.utt_id)
    report.counts[out_manifest.name] = write_manifest(out_manifest, utterances)
    report.write(out_manifest.with_name(out_manifest.stem + ".prep_report.txt"))
    print(report.summary(), end="")
    return utterances


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_prep.kaldi_dir", description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", required=True, type=Path, help="Kaldi data dir (wav.scp, text, utt2spk)")
    parser.add_argument("--out", required=True, type=Path, help="manifest to write (.jsonl)")
    parser.add_argument("--phones-from-text", action="store_true", help="`text` holds phones, not words")
    parser.add_argument("--cache-dir", type=Path, help="where piped wav.scp commands' output goes")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        utterances = prepare_kaldi_dir(args.data_dir, args.out, args.phones_from_text, args.cache_dir)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0 if utterances else 1


if __name__ == "__main__":
    sys.exit(main())
