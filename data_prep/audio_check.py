"""Cheap readability checks on an audio file at prep time (header, SPHERE sample count, last frames).

A full decode of every file would make LibriSpeech preparation take many minutes, so we check what catches
the failures seen in practice, in milliseconds per file:
- missing / empty / non-audio files: `asr_gan.audio.audio_info` fails;
- truncated SPHERE (TIMIT): libsndfile silently reports the frames that are there, so we compare with the
  header's `sample_count`;
- shorten-compressed SPHERE (some LDC copies): libsndfile cannot decode it, sph2pipe can;
- truncated FLAC / wav: the header still claims the full length, but seeking to the last frames fails.
Wrong sample rate or channel count is not an error (`load_audio` resamples and downmixes); it is noted.
"""

from __future__ import annotations

from pathlib import Path

import soundfile

from asr_gan.audio.io import SAMPLE_RATE, AudioError, AudioInfo, audio_info
from data_prep.report import PrepReport

# How many trailing frames to decode to prove the file is complete.
TAIL_FRAMES = 256


def read_sphere_header(path: str | Path) -> dict[str, str] | None:
    """Fields of a NIST SPHERE header (`{"sample_count": "46797", ...}`), or None if not a SPHERE file."""
    with open(path, "rb") as f:
        head = f.read(1024)
    if not head.startswith(b"NIST_1A"):
        return None
    lines = head.split(b"\n")
    fields: dict[str, str] = {}
    try:
        fields["header_bytes"] = str(int(lines[1].strip()))
    except (IndexError, ValueError):
        return fields
    for raw in lines[2:]:
        line = raw.decode("ascii", errors="replace").strip()
        if line == "end_head":
            break
        parts = line.split(None, 2)
        if len(parts) == 3:
            fields[parts[0]] = parts[2]
    return fields


def _check_sphere(path: Path, info: AudioInfo) -> None:
    header = read_sphere_header(path)
    if header is None:
        return
    coding = header.get("sample_coding", "pcm")
    if "shorten" in coding or "wavpack" in coding:
        raise AudioError(f"{path}: SPHERE with {coding} compression; convert it with `sph2pipe -f wav`")
    try:
        declared = int(header["sample_count"])
        header_bytes = int(header.get("header_bytes", 1024))
        sample_bytes = int(header.get("sample_n_bytes", 2)) * int(header.get("channel_count", 1))
    except (KeyError, ValueError):
        return  # libsndfile read it; a header without sample_count is not ours to judge
    present = (path.stat().st_size - header_bytes) // max(sample_bytes, 1)
    if present < declared:
        raise AudioError(f"{path}: truncated SPHERE file ({present} of {declared} samples in the header)")


def _check_tail(path: Path, info: AudioInfo) -> None:
    try:
        with soundfile.SoundFile(str(path)) as f:
            f.seek(max(0, info.num_samples - TAIL_FRAMES))
            tail = f.read(TAIL_FRAMES)
    except Exception as err:  # libsndfile raises its own error types
        raise AudioError(f"{path}: truncated or corrupt audio (cannot read its last frames: {err})") from None
    if len(tail) < min(TAIL_FRAMES, info.num_samples):
        raise AudioError(f"{path}: truncated audio (last frames missing)")


def probe_audio(path: str | Path, report: PrepReport | None = None) -> AudioInfo:
    """Header facts of `path` after the checks above; notes odd rate / channels in `report`.

    Raises:
        AudioError: missing, empty, corrupt, truncated or undecodable file (the message starts with the path).
    """
    path = Path(path)
    if path.is_file() and path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file (0 bytes); re-copy it from the corpus")
    info = audio_info(path)
    _check_sphere(path, info)
    _check_tail(path, info)
    if report is not None:
        if info.sample_rate != SAMPLE_RATE:
            report.note("sample rate", f"{path}: {info.sample_rate} Hz (resampled to {SAMPLE_RATE} Hz when loaded)")
        if info.channels != 1:
            report.note("channels", f"{path}: {info.channels} channels (downmixed to mono when loaded)")
    return info
