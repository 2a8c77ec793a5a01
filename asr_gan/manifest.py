"""The one corpus manifest format of asr_gan: JSON lines, one utterance per line.

Every corpus (TIMIT, LibriSpeech, a Kaldi data dir, the demo corpus) is prepared into
this format, and every later stage reads it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Iterable


@dataclass
class Utterance:
    """One utterance of a corpus.

    `words` and `phones` are space-separated strings (None when unknown). `start`/`end`
    select a span of the audio file in seconds (Kaldi `segments`); `end=None` means
    the end of the file.
    """

    utt_id: str
    audio: str
    num_samples: int
    sample_rate: int
    speaker: str
    words: str | None = None
    phones: str | None = None
    start: float = 0.0
    end: float | None = None

    @property
    def duration(self) -> float:
        """Duration in seconds of the selected span."""
        if self.end is not None:
            return self.end - self.start
        return self.num_samples / self.sample_rate - self.start


_FIELDS = {f.name for f in fields(Utterance)}


class ManifestError(ValueError):
    """A manifest line that cannot be read; the message names file and line."""


def write_manifest(path: str | Path, utterances: Iterable[Utterance]) -> int:
    """Write utterances as JSONL (atomically: a crash leaves no half file). Returns the count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    count = 0
    with open(tmp, "w", encoding="utf-8") as f:
        for utt in utterances:
            f.write(json.dumps(asdict(utt), ensure_ascii=False) + "\n")
            count += 1
    tmp.replace(path)
    return count


def read_manifest(path: str | Path) -> list[Utterance]:
    """Read a JSONL manifest; raises ManifestError naming the file and line on bad input."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    utterances = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ManifestError(f"{path}:{lineno}: not JSON ({err.msg})") from None
            unknown = set(record) - _FIELDS
            if unknown:
                raise ManifestError(f"{path}:{lineno}: unknown fields {sorted(unknown)}")
            try:
                utterances.append(Utterance(**record))
            except TypeError as err:
                raise ManifestError(f"{path}:{lineno}: {err}") from None
    return utterances


def validate_manifest(utterances: list[Utterance], check_audio: bool = True) -> list[str]:
    """Return a list of problems (empty when the manifest is sound)."""
    problems = []
    seen: set[str] = set()
    for utt in utterances:
        where = f"utterance {utt.utt_id}"
        if utt.utt_id in seen:
            problems.append(f"{where}: duplicate utterance id")
        seen.add(utt.utt_id)
        if not utt.utt_id or any(c.isspace() for c in utt.utt_id):
            problems.append(f"{where}: utterance id is empty or holds whitespace")
        if utt.num_samples <= 0:
            problems.append(f"{where}: num_samples={utt.num_samples}")
        if utt.sample_rate <= 0:
            problems.append(f"{where}: sample_rate={utt.sample_rate}")
        if utt.end is not None and utt.end <= utt.start:
            problems.append(f"{where}: end {utt.end} <= start {utt.start}")
        if check_audio and not Path(utt.audio).is_file():
            problems.append(f"{where}: audio file {utt.audio} not found")
    return problems
