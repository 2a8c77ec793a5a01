"""Edit counts between two token sequences: the one definition of an error that training, model selection and
scoring share (asr_gan.scoring builds its alignments and reports on it)."""

from __future__ import annotations

from typing import NamedTuple, Sequence

from rapidfuzz.distance import Levenshtein


class EditCounts(NamedTuple):
    """Edit operations of one alignment."""

    substitutions: int
    deletions: int
    insertions: int

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions


def edit_counts(ref: Sequence[str], hyp: Sequence[str]) -> EditCounts:
    """Substitutions, deletions and insertions of the alignment with the fewest edits, then fewest substitutions.

    One weighted Levenshtein distance (RapidFuzz, C++) gives both: with every edit costing `edit` and a
    substitution one more, cost = edit * errors + substitutions, and `edit` exceeds any possible substitution
    count, so fewer errors always wins and substitutions only break ties.
    """
    if not ref or not hyp:
        return EditCounts(0, len(ref), len(hyp))
    edit = min(len(ref), len(hyp)) + 1
    cost = Levenshtein.distance(ref, hyp, weights=(edit, edit, edit + 1))
    errors, substitutions = divmod(cost, edit)
    # errors = S + D + I and len(ref) - len(hyp) = D - I, so S fixes D and I.
    deletions = (errors - substitutions + len(ref) - len(hyp)) // 2
    return EditCounts(substitutions, deletions, errors - substitutions - deletions)
