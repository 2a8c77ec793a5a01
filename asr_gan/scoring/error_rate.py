"""Phone / word error rate of hypotheses against references: minimum-edit alignment (jiwer / RapidFuzz).

Corpus error rate = (substitutions + deletions + insertions) / reference tokens, summed over utterances (not a
mean of per-utterance rates), the figure papers report as PER / WER.

Choices, each pinned by a test in tests/test_scoring.py:
  - An utterance missing from the hypotheses is scored as an empty hypothesis (all its tokens deleted) and named in
    `ScoreResult.missing`; hypotheses for utterances absent from the references are ignored and named in `extra`.
  - An empty reference utterance adds no reference tokens and one insertion per hypothesis token, as sclite does.
    If no reference token is left in the whole set the rate is undefined and `score` raises ValueError.
  - `fold` is applied before `remove`, so closures folded to `sil` are removed with the other silences.

Which alignment: the one with the fewest edits (Levenshtein distance, what jiwer and wav2vec-U's `editdistance`
count) and, among those, the fewest substitutions. Where several minimum-edit alignments exist, jiwer alone often
picks two substitutions where a deletion, a match and an insertion take the same number of edits (ref `a b`,
hyp `b c`); NIST sclite picks the latter, and so do we, so that S/D/I counts agree with sclite on ordinary
recognition errors (checked against sclite in the tests). The counts come from RapidFuzz (jiwer's own engine)
with weights that make this order exact; the per-token alignment of the report comes from jiwer, re-aligned in
Python in the few utterances where jiwer's choice has more substitutions.

sclite can still differ on shifted sequences, because it minimises a weighted cost rather than the number of
edits: for ref `a b c d e`, hyp `d e x y z` we count 5 substitutions and sclite (sctk 2.4.10) 3 deletions and
3 insertions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Mapping, NamedTuple, Sequence

import jiwer

from asr_gan.edits import EditCounts, edit_counts

# Alignment operations, as sclite's `Eval:` line marks them (C = correct, no mark).
CORRECT, SUBSTITUTION, DELETION, INSERTION = "C", "S", "D", "I"


class AlignedToken(NamedTuple):
    """One column of an alignment: `ref` is None for an insertion, `hyp` is None for a deletion."""

    op: str  # CORRECT, SUBSTITUTION, DELETION or INSERTION
    ref: str | None
    hyp: str | None


@dataclass
class ScoreResult:
    """Scores of a hypothesis set against a reference set.

    `error_rate` is a fraction (0.2341 = 23.41 %). `per_utterance` holds, in reference order, one
    `(utt_id, ref_tokens, hyp_tokens, errors)` tuple per reference utterance, with the token lists as scored
    (after folding and removal; an empty hypothesis for a missing utterance).
    """

    error_rate: float
    errors: int
    substitutions: int
    deletions: int
    insertions: int
    ref_tokens: int
    utterances: int
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    per_utterance: list[tuple[str, list[str], list[str], int]] = field(default_factory=list)

    def summary(self, metric: str = "PER") -> str:
        """One line, e.g. `PER 23.41% (N=1234 S=150 D=80 I=59) on 50 utterances`."""
        return (f"{metric} {100 * self.error_rate:.2f}% (N={self.ref_tokens} S={self.substitutions} "
                f"D={self.deletions} I={self.insertions}) on {self.utterances} utterances")

    def totals(self) -> dict[str, object]:
        """The corpus-level fields (everything but `per_utterance`), JSON-ready."""
        return {
            "error_rate": self.error_rate,
            "error_rate_percent": round(100 * self.error_rate, 2),
            "errors": self.errors,
            "substitutions": self.substitutions,
            "deletions": self.deletions,
            "insertions": self.insertions,
            "ref_tokens": self.ref_tokens,
            "utterances": self.utterances,
            "missing": list(self.missing),
            "extra": list(self.extra),
        }


def _jiwer_alignments(pairs: Sequence[tuple[Sequence[str], Sequence[str]]]) -> list[list[jiwer.AlignmentChunk]]:
    """jiwer alignment chunks for (ref, hyp) token-list pairs, all with non-empty sides, in one call.

    Tokens are joined with single spaces for jiwer, whose default transform splits them back: they come from
    `str.split()`, so they hold no whitespace. Empty sides are kept away from jiwer because jiwer 3 rejects
    empty references; they need no alignment anyway.
    """
    if not pairs:
        return []
    output = jiwer.process_words([" ".join(ref) for ref, _ in pairs], [" ".join(hyp) for _, hyp in pairs])
    return output.alignments


def _splits_back(tokens: Sequence[str]) -> bool:
    """Whether jiwer's whitespace split of the space-joined tokens gives the same tokens (no token is empty or
    holds whitespace; always so for tokens from `read_transcripts`)."""
    return " ".join(tokens).split() == list(tokens)


def _tokens_of_chunks(ref: Sequence[str], hyp: Sequence[str],
                      chunks: Sequence[jiwer.AlignmentChunk]) -> list[AlignedToken]:
    aligned: list[AlignedToken] = []
    for chunk in chunks:
        ref_part = ref[chunk.ref_start_idx:chunk.ref_end_idx]
        hyp_part = hyp[chunk.hyp_start_idx:chunk.hyp_end_idx]
        if chunk.type == "equal":
            aligned += [AlignedToken(CORRECT, r, h) for r, h in zip(ref_part, hyp_part)]
        elif chunk.type == "substitute":
            aligned += [AlignedToken(SUBSTITUTION, r, h) for r, h in zip(ref_part, hyp_part)]
        elif chunk.type == "delete":
            aligned += [AlignedToken(DELETION, r, None) for r in ref_part]
        elif chunk.type == "insert":
            aligned += [AlignedToken(INSERTION, None, h) for h in hyp_part]
        else:
            raise RuntimeError(f"unexpected jiwer alignment chunk type {chunk.type!r}")
    return aligned


def _fewest_substitutions_alignment(ref: Sequence[str], hyp: Sequence[str]) -> list[AlignedToken]:
    """The alignment `edit_counts` counts, by dynamic programming in Python: O(len(ref) * len(hyp)), so it is
    only run where jiwer's alignment has more substitutions than necessary."""
    rows, cols = len(ref), len(hyp)
    edit = min(rows, cols) + 1  # the same weights as edit_counts
    cost = [[0] * (cols + 1) for _ in range(rows + 1)]
    for i in range(1, rows + 1):
        cost[i][0] = i * edit
    for j in range(1, cols + 1):
        cost[0][j] = j * edit
    for i in range(1, rows + 1):
        previous, current, ref_token = cost[i - 1], cost[i], ref[i - 1]
        for j in range(1, cols + 1):
            diagonal = previous[j - 1] + (0 if ref_token == hyp[j - 1] else edit + 1)
            current[j] = min(diagonal, previous[j] + edit, current[j - 1] + edit)
    aligned: list[AlignedToken] = []
    i, j = rows, cols
    while i > 0 or j > 0:
        # Walk back preferring the diagonal, then a deletion, then an insertion: a deterministic choice among
        # alignments of equal cost, which all have the same S/D/I counts.
        if i > 0 and j > 0:
            same = ref[i - 1] == hyp[j - 1]
            if cost[i][j] == cost[i - 1][j - 1] + (0 if same else edit + 1):
                aligned.append(AlignedToken(CORRECT if same else SUBSTITUTION, ref[i - 1], hyp[j - 1]))
                i, j = i - 1, j - 1
                continue
        if i > 0 and cost[i][j] == cost[i - 1][j] + edit:
            aligned.append(AlignedToken(DELETION, ref[i - 1], None))
            i -= 1
        else:
            aligned.append(AlignedToken(INSERTION, None, hyp[j - 1]))
            j -= 1
    return aligned[::-1]


def _realign_between_matches(aligned: Sequence[AlignedToken]) -> list[AlignedToken]:
    """Keep the matched tokens of an alignment and re-align each stretch of edits between them."""
    result: list[AlignedToken] = []
    stretch: list[AlignedToken] = []
    for item in [*aligned, None]:
        if item is None or item.op == CORRECT:
            if stretch:
                result += _fewest_substitutions_alignment([t.ref for t in stretch if t.ref is not None],
                                                          [t.hyp for t in stretch if t.hyp is not None])
                stretch = []
            if item is not None:
                result.append(item)
        else:
            stretch.append(item)
    return result


def count_edits(aligned: Iterable[AlignedToken]) -> EditCounts:
    """Substitutions, deletions and insertions of one alignment."""
    ops = [item.op for item in aligned]
    return EditCounts(ops.count(SUBSTITUTION), ops.count(DELETION), ops.count(INSERTION))


def align_many(pairs: Sequence[tuple[Sequence[str], Sequence[str]]]) -> list[list[AlignedToken]]:
    """`align` for many (ref tokens, hyp tokens) pairs, with a single jiwer call."""
    to_align = [index for index, (ref, hyp) in enumerate(pairs)
                if ref and hyp and _splits_back(ref) and _splits_back(hyp)]
    chunks_of = dict(zip(to_align, _jiwer_alignments([pairs[index] for index in to_align])))
    alignments = []
    for index, (ref, hyp) in enumerate(pairs):
        if not ref or not hyp:  # everything deleted or inserted
            aligned = ([AlignedToken(DELETION, token, None) for token in ref]
                       + [AlignedToken(INSERTION, None, token) for token in hyp])
        elif index not in chunks_of:  # tokens jiwer would split differently: align them here
            aligned = _fewest_substitutions_alignment(ref, hyp)
        else:
            # jiwer's alignment usually has the counted split already. Where not, re-aligning each stretch between
            # its matched tokens is cheap and usually enough; the whole utterance is re-aligned only otherwise.
            target = edit_counts(ref, hyp)
            aligned = _tokens_of_chunks(ref, hyp, chunks_of[index])
            if count_edits(aligned) != target:
                aligned = _realign_between_matches(aligned)
            if count_edits(aligned) != target:
                aligned = _fewest_substitutions_alignment(ref, hyp)
        alignments.append(aligned)
    return alignments


def align(ref: Sequence[str], hyp: Sequence[str]) -> list[AlignedToken]:
    """Token-by-token alignment of one utterance, left to right: fewest edits, then fewest substitutions; its
    S/D/I counts are `edit_counts(ref, hyp)`.

    Example: ref a b c d, hyp a x c -> C(a,a) S(b,x) C(c,c) D(d,None).
    """
    return align_many([(ref, hyp)])[0]


def prepare_tokens(tokens: Sequence[str], remove: frozenset[str] = frozenset(),
                   fold: Mapping[str, str | None] | None = None) -> list[str]:
    """Apply `fold` (token -> token, None = drop; tokens it lacks are kept) and then drop tokens in `remove`."""
    if fold is not None:
        folded = [fold.get(token, token) for token in tokens]
        tokens = [token for token in folded if token is not None]
    return [token for token in tokens if token not in remove]


def score(refs: dict[str, list[str]], hyps: dict[str, list[str]], remove: Iterable[str] = (),
          fold: Mapping[str, str | None] | None = None) -> ScoreResult:
    """Score hypotheses against references, both {utt_id: tokens} (as `read_transcripts` returns them).

    Args:
        refs: reference token lists; every utterance here is scored.
        hyps: hypothesis token lists; ids not in `refs` are ignored (listed in `extra`), ids missing from it are
            scored as empty hypotheses (listed in `missing`).
        remove: tokens dropped from both sides before alignment, e.g. `SILENCE_TOKENS` for PER without silence.
        fold: token -> token map applied to both sides first (None drops the token; tokens it lacks are kept),
            e.g. `timit39_map()`.

    Raises:
        ValueError: `refs` is empty, or holds no token after folding and removal (the rate would be undefined).
    """
    if not refs:
        raise ValueError("no reference utterances to score")
    # A bare string would otherwise be taken as its characters.
    removed = frozenset([remove] if isinstance(remove, str) else remove)
    missing = [utt_id for utt_id in refs if utt_id not in hyps]
    extra = [utt_id for utt_id in hyps if utt_id not in refs]
    utt_ids = list(refs)
    pairs = [(prepare_tokens(refs[utt_id], removed, fold), prepare_tokens(hyps.get(utt_id, []), removed, fold))
             for utt_id in utt_ids]
    counts = [edit_counts(ref, hyp) for ref, hyp in pairs]
    ref_tokens = sum(len(ref) for ref, _ in pairs)
    if ref_tokens == 0:
        raise ValueError(f"the {len(refs)} reference utterances hold no tokens"
                         + (f" once {sorted(removed)} are removed" if removed else "")
                         + "; an error rate needs at least one reference token")
    substitutions = sum(count.substitutions for count in counts)
    deletions = sum(count.deletions for count in counts)
    insertions = sum(count.insertions for count in counts)
    errors = substitutions + deletions + insertions
    return ScoreResult(
        error_rate=errors / ref_tokens,
        errors=errors,
        substitutions=substitutions,
        deletions=deletions,
        insertions=insertions,
        ref_tokens=ref_tokens,
        utterances=len(refs),
        missing=missing,
        extra=extra,
        per_utterance=[(utt_id, ref, hyp, count.errors)
                       for utt_id, (ref, hyp), count in zip(utt_ids, pairs, counts)],
    )


def utterance_error_rate(ref_length: int, errors: int) -> float:
    """errors / reference tokens for one utterance; an empty reference gives inf with errors, 0.0 without."""
    if ref_length == 0:
        return math.inf if errors else 0.0
    return errors / ref_length
