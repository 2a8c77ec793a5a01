"""CTM files (NIST sclite's time-marked transcripts): `utt_id channel start duration phone [confidence]`."""

from __future__ import annotations

from pathlib import Path

TimedPhone = tuple[str, float, float]  # (phone, start seconds, end seconds)


def read_ctm(path: str | Path) -> dict[str, list[TimedPhone]]:
    """CTM lines `utt_id channel start duration phone [confidence]` -> {utt_id: [(phone, start, end)]}, in time order.

    Lines starting with `;;` are comments.

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: a line without five fields or with non-numeric times (file:line).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: CTM file not found")
    timed: dict[str, list[TimedPhone]] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith(";;"):
            continue
        parts = line.split()
        try:
            utt_id, start, duration, phone = parts[0], float(parts[2]), float(parts[3]), parts[4]
        except (IndexError, ValueError):
            raise ValueError(f"{path}:{lineno}: expected 'utt_id channel start duration phone', got {line!r}") from None
        timed.setdefault(utt_id, []).append((phone, start, start + duration))
    for phones in timed.values():
        phones.sort(key=lambda p: p[1])
    return timed
