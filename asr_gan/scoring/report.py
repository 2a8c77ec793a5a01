"""A readable alignment report (`alignment.txt`): a summary header, then every utterance worst first.

Each utterance is shown as sclite's `pralign` report shows it, columns padded to the longer token, `*` for the
missing side, and an `EVAL:` line marking S (substitution), D (deletion), I (insertion):

    fcjf0_si1027  2 errors / 4 tokens = 50.00%  (S=1 D=1 I=0)
    REF:  a b c d
    HYP:  a x c *
    EVAL:   S   D

"Worst" is the utterance error rate (errors / reference tokens; an empty reference with insertions counts as
infinitely bad), then the number of errors, then the id, so the order is stable.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

from asr_gan.scoring.error_rate import CORRECT, AlignedToken, ScoreResult, align_many, count_edits, utterance_error_rate


def format_alignment(aligned: Sequence[AlignedToken]) -> tuple[str, str, str]:
    """The REF, HYP and EVAL rows (without labels) of one alignment, each column as wide as its longer token."""
    ref_cells, hyp_cells, eval_cells = [], [], []
    for op, ref, hyp in aligned:
        width = max(len(ref or ""), len(hyp or ""), 1)
        ref_cells.append((ref if ref is not None else "*" * width).ljust(width))
        hyp_cells.append((hyp if hyp is not None else "*" * width).ljust(width))
        eval_cells.append(("" if op == CORRECT else op).ljust(width))
    return " ".join(ref_cells).rstrip(), " ".join(hyp_cells).rstrip(), " ".join(eval_cells).rstrip()


def worst_first(result: ScoreResult) -> list[tuple[str, list[str], list[str], int]]:
    """`result.per_utterance` sorted worst first: error rate, then errors (both descending), then id."""
    return sorted(result.per_utterance,
                  key=lambda item: (-utterance_error_rate(len(item[1]), item[3]), -item[3], item[0]))


def format_report(result: ScoreResult, metric: str = "PER", header: Sequence[str] = ()) -> str:
    """The whole report as text: the summary line, `header` lines (e.g. file names, options), missing and extra
    utterances, then one block per reference utterance, worst first."""
    lines = [result.summary(metric), *header]
    if result.missing:
        lines.append(f"missing from the hypothesis file, scored as all deletions ({len(result.missing)}): "
                     + " ".join(result.missing))
    if result.extra:
        lines.append(f"in the hypothesis file but not the reference, ignored ({len(result.extra)}): "
                     + " ".join(result.extra))
    with_errors = sum(1 for item in result.per_utterance if item[3] > 0)
    lines.append(f"utterances with errors: {with_errors} of {len(result.per_utterance)}; "
                 "worst first (error rate, then errors)")
    missing = set(result.missing)
    ordered = worst_first(result)
    alignments = align_many([(ref, hyp) for _, ref, hyp, _ in ordered])
    for (utt_id, ref, hyp, errors), aligned in zip(ordered, alignments):
        counts = count_edits(aligned)
        rate = utterance_error_rate(len(ref), errors)
        rate_text = "n/a" if math.isinf(rate) else f"{100 * rate:.2f}%"
        note = "  [missing from the hypothesis file]" if utt_id in missing else ""
        ref_row, hyp_row, eval_row = format_alignment(aligned)
        lines += [
            "",
            f"{utt_id}  {errors} errors / {len(ref)} tokens = {rate_text}  "
            f"(S={counts.substitutions} D={counts.deletions} I={counts.insertions}){note}",
            f"REF:  {ref_row}".rstrip(),
            f"HYP:  {hyp_row}".rstrip(),
            f"EVAL: {eval_row}".rstrip(),
        ]
    return "\n".join(lines) + "\n"


def write_report(path: str | Path, result: ScoreResult, metric: str = "PER", header: Sequence[str] = ()) -> None:
    """Write `format_report(...)` to `path` (UTF-8)."""
    Path(path).write_text(format_report(result, metric, header), encoding="utf-8")
