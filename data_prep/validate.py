"""Check manifests (ours, or any JSONL of `asr_gan.manifest.Utterance`) before a long run starts.

Always: the file parses, `asr_gan.manifest.validate_manifest` finds no problem (unique ids without whitespace,
positive sizes, end after start, audio files present), and words / phones hold no empty tokens.
With `--check-audio`: every audio file opens, is complete (`data_prep.audio_check.probe_audio`), and its
header agrees with the manifest's `num_samples` / `sample_rate`; every span lies inside its file.

Prints one line per problem and exits 1 when there are any (2 when a manifest cannot be read at all).

CLI: `python -m data_prep.validate exp/timit/data/train.jsonl exp/timit/data/dev.jsonl [--check-audio]`
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from asr_gan.audio.io import AudioError
from asr_gan.manifest import ManifestError, Utterance, read_manifest, validate_manifest
from data_prep.audio_check import probe_audio

# A span may end this far past the file (rounding in segment times) before it is a problem.
_END_TOLERANCE_S = 0.02


def check_text_fields(utts: list[Utterance]) -> list[str]:
    """Words / phones must be single-space separated tokens (split() round-trips), or None."""
    problems = []
    for utt in utts:
        for name in ("words", "phones"):
            value = getattr(utt, name)
            if value is not None and value != " ".join(value.split()):
                problems.append(f"utterance {utt.utt_id}: {name} has empty tokens or stray whitespace ({value!r})")
            if value is not None and not value.strip():
                problems.append(f"utterance {utt.utt_id}: {name} is an empty string (use null for unknown)")
    return problems


def check_audio_files(utts: list[Utterance], desc: str = "audio") -> list[str]:
    """Open every audio file once; compare its header with the manifest. Missing files are left to
    `validate_manifest`, which already names them."""
    problems = []
    infos = {}
    for utt in tqdm(utts, desc=desc, unit="utt", leave=False):
        path = Path(utt.audio)
        if not path.is_file():
            continue
        if utt.audio not in infos:
            try:
                infos[utt.audio] = probe_audio(path)
            except AudioError as err:
                infos[utt.audio] = err
        info = infos[utt.audio]
        if isinstance(info, AudioError):
            problems.append(f"utterance {utt.utt_id}: {info}")
            continue
        if (info.num_samples, info.sample_rate) != (utt.num_samples, utt.sample_rate):
            problems.append(
                f"utterance {utt.utt_id}: manifest says {utt.num_samples} samples at {utt.sample_rate} Hz, "
                f"{utt.audio} holds {info.num_samples} at {info.sample_rate} Hz (re-run data preparation)"
            )
        length_s = info.num_samples / info.sample_rate
        end = utt.end if utt.end is not None else length_s
        if utt.start >= length_s or end > length_s + _END_TOLERANCE_S:
            problems.append(f"utterance {utt.utt_id}: span {utt.start}-{utt.end} s outside {utt.audio} "
                            f"({length_s:.3f} s)")
    return problems


def validate_file(path: str | Path, check_audio: bool = False) -> list[str]:
    """All problems of one manifest file, each starting with the file's path."""
    path = Path(path)
    try:
        utts = read_manifest(path)
    except ManifestError as err:
        return [str(err)]
    problems = validate_manifest(utts, check_audio=True) + check_text_fields(utts)
    if not utts:
        problems.append("no utterances")
    if check_audio:
        problems += check_audio_files(utts, desc=path.name)
    return [f"{path}: {problem}" for problem in problems]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_prep.validate", description=__doc__.split("\n")[0])
    parser.add_argument("manifests", nargs="+", type=Path, help="JSONL manifests to check")
    parser.add_argument("--check-audio", action="store_true", help="open every audio file and compare headers")
    args = parser.parse_args(argv)
    status = 0
    for manifest in args.manifests:
        problems = validate_file(manifest, args.check_audio)
        for problem in problems:
            print(problem)
        try:
            count = len(read_manifest(manifest))
        except ManifestError:
            status = 2
            continue
        print(f"{manifest}: {count} utterances, {len(problems)} problems")
        if problems:
            status = max(status, 1)
    return status


if __name__ == "__main__":
    sys.exit(main())
