"""Transcript files: Kaldi `text` style (what the recipes write) and NIST sclite `trn` (what sclite reads).

Kaldi `text` style (`text/<split>.phn`, `text/<split>.wrd`, decoder output), one utterance per line:

    fcjf0_si1027 sil hh ih z sil
    fcjf0_si1028                      <- an utterance id alone: a valid, empty transcript

sclite `trn` (`sclite -r ref.trn trn -h hyp.trn trn -i rm`), the id in parentheses at the end of the line:

    hh ih z (fcjf0_si1027)
    (fcjf0_si1028)

With `-i rm` sclite reads the id as `<speaker>-<rest>` or `<speaker>_<rest>` and groups its per-speaker table on
the speaker; the project's utterance ids already start with the speaker (`fcjf0_si1027`,
`lbi-1272-128104-0000`), so ids are written unchanged and read back unchanged.

Files are UTF-8; errors name `file:line` and say what to fix.
"""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Iterator, Mapping, Sequence

# Tokens sclite's trn reader treats as syntax: `{ a / b }` alternatives, `@` the NULL word. A transcript holding
# them would be scored differently by sclite than by us, so writing one is refused.
_TRN_SYNTAX_TOKENS = frozenset({"{", "}", "/", "@"})


class TranscriptFormatError(ValueError):
    """A transcript file that cannot be read as asked; the message starts with `path:line`."""


def _numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number from 1, decoded line) for each line of a UTF-8 file; a leading byte-order mark is ignored.

    Decoding line by line (not the whole file at once) lets the error name the line that is not UTF-8.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise IsADirectoryError(f"{path}: is a folder, expected a transcript file") from None
    except OSError as err:
        raise OSError(f"{path}: cannot read ({err.strerror or err})") from None
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise TranscriptFormatError(
                f"{path}:{number}: not UTF-8 text (byte 0x{raw[err.start]:02x} at column {err.start + 1}); "
                "convert the file, e.g. `iconv -f LATIN1 -t UTF-8`"
            ) from None
        yield number, line


def read_transcripts(path: str | Path) -> dict[str, list[str]]:
    """Read a Kaldi `text`-style file: `utt_id tok1 tok2 ...` per line -> {utt_id: [tok1, tok2, ...]}.

    Fields are separated by any whitespace; blank lines are skipped; a line holding only an id is an empty
    transcript. Keys keep the file's order.

    Raises:
        FileNotFoundError / OSError: the file cannot be read (message starts with the path).
        TranscriptFormatError: a line is not UTF-8, or an utterance id appears twice (`path:line`, both lines named).
    """
    path = Path(path)
    transcripts: dict[str, list[str]] = {}
    first_line: dict[str, int] = {}
    for number, line in _numbered_lines(path):
        fields = line.split()
        if not fields:
            continue
        utt_id = fields[0]
        if utt_id in transcripts:
            raise TranscriptFormatError(
                f"{path}:{number}: duplicate utterance id {utt_id!r} (first on line {first_line[utt_id]}); "
                "each utterance must appear once"
            )
        transcripts[utt_id] = fields[1:]
        first_line[utt_id] = number
    return transcripts


def read_trn(path: str | Path) -> dict[str, list[str]]:
    """Read an sclite trn file: `tok1 tok2 ... (utt_id)` per line -> {utt_id: [tok1, tok2, ...]}.

    Blank lines and `;;` comment lines are skipped. Keys keep the file's order.

    Raises:
        FileNotFoundError / OSError: the file cannot be read.
        TranscriptFormatError: not UTF-8, no `(utt_id)` at the end of a line, or an id twice (`path:line`).
    """
    path = Path(path)
    transcripts: dict[str, list[str]] = {}
    first_line: dict[str, int] = {}
    for number, line in _numbered_lines(path):
        line = line.strip()
        if not line or line.startswith(";;"):
            continue
        open_paren = line.rfind("(")
        utt_id = line[open_paren + 1:-1].strip() if open_paren >= 0 else ""
        if not line.endswith(")") or not utt_id or any(c.isspace() for c in utt_id):
            raise TranscriptFormatError(
                f"{path}:{number}: expected `tokens (utt_id)` (sclite trn), got {line[:80]!r}"
            )
        if utt_id in transcripts:
            raise TranscriptFormatError(
                f"{path}:{number}: duplicate utterance id {utt_id!r} (first on line {first_line[utt_id]})"
            )
        transcripts[utt_id] = line[:open_paren].split()
        first_line[utt_id] = number
    return transcripts


def write_trn(path: str | Path, transcripts: Mapping[str, Sequence[str]]) -> None:
    """Write an sclite trn file, one `tok1 tok2 ... (utt_id)` line per utterance in the mapping's order.

    An empty transcript is written as `(utt_id)`, which sclite scores as an empty utterance. The parent folder is
    created if needed.

    Raises:
        ValueError: an id holding whitespace or parentheses, or a token sclite would misread (one holding
            whitespace or parentheses, or the trn syntax tokens `{ } / @`); the utterance is named.
    """
    path = Path(path)
    lines = []
    for utt_id, tokens in transcripts.items():
        if not utt_id or any(c.isspace() or c in "()" for c in utt_id):
            raise ValueError(f"{path}: utterance id {utt_id!r} cannot be written to a trn file "
                             "(ids may not be empty or hold whitespace or parentheses)")
        for token in tokens:
            if not token or token in _TRN_SYNTAX_TOKENS or any(c.isspace() or c in "()" for c in token):
                raise ValueError(f"{path}: utterance {utt_id}: token {token!r} would be misread by sclite "
                                 "(empty, whitespace, parentheses, or one of { } / @)")
        lines.append(" ".join([*tokens, f"({utt_id})"]) + "\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines), encoding="utf-8")
