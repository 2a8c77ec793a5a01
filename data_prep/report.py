"""Report-and-skip bookkeeping shared by the corpus preparers.

A preparer never dies on one bad utterance: it calls `PrepReport.skip(...)` with a message that names the
file, moves on, and at the end prints `summary()` and writes it to `prep_report.txt`. Things that are not
errors at prep time (an 8 kHz or stereo file, which `load_audio` resamples / downmixes later) go to
`note(...)`; whole-corpus surprises (a partial copy with fewer utterances than the standard set) go to
`warn(...)`.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

# The summary lists at most this many messages per reason; the counts are always complete.
MAX_EXAMPLES_PER_REASON = 20


@dataclass
class PrepReport:
    """What one preparation run kept, skipped and noticed.

    `skip`/`note` group messages under a short reason (`"unreadable audio"`, `"not UTF-8"`) so the summary
    can count them; `counts` holds the utterances written per split.
    """

    title: str
    counts: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    notes: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    warnings: list[str] = field(default_factory=list)

    def skip(self, reason: str, message: str) -> None:
        """Record one skipped utterance (or recording); `message` starts with the offending file."""
        self.skipped[reason].append(message)
        log.warning("skipped: %s", message)

    def note(self, reason: str, message: str) -> None:
        """Record something kept but worth knowing (other sample rate, no transcript, ...)."""
        self.notes[reason].append(message)
        log.info("note: %s", message)

    def warn(self, message: str) -> None:
        """Record a corpus-level warning (counts differ from the standard set, ...)."""
        self.warnings.append(message)
        log.warning(message)

    @property
    def num_skipped(self) -> int:
        return sum(len(messages) for messages in self.skipped.values())

    def skipped_counts(self) -> Counter:
        """Number of skipped items per reason."""
        return Counter({reason: len(messages) for reason, messages in self.skipped.items()})

    def summary(self) -> str:
        """Human-readable summary: counts per split, skips and notes per reason (with examples), warnings."""
        lines = [f"# {self.title}", ""]
        lines.append("written (utterances, or lines of text files):")
        for split, count in self.counts.items():
            lines.append(f"  {split}: {count}")
        lines.append(f"skipped: {self.num_skipped}")
        for title, groups in (("skipped", self.skipped), ("noted (kept)", self.notes)):
            for reason, messages in sorted(groups.items()):
                lines.append(f"  {title} [{reason}]: {len(messages)}")
                for message in messages[:MAX_EXAMPLES_PER_REASON]:
                    lines.append(f"    {message}")
                if len(messages) > MAX_EXAMPLES_PER_REASON:
                    lines.append(f"    ... and {len(messages) - MAX_EXAMPLES_PER_REASON} more")
        lines.append(f"warnings: {len(self.warnings)}")
        lines.extend(f"  {warning}" for warning in self.warnings)
        return "\n".join(lines) + "\n"

    def write(self, path: str | Path) -> Path:
        """Write the summary to `path` (usually `DIR/prep_report.txt`)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.summary(), encoding="utf-8")
        return path
