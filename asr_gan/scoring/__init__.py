"""Scoring: hypotheses vs references -> PER / WER; `python -m asr_gan.scoring`.

  trn.py         transcript files: Kaldi `utt_id tok ...` (read_transcripts) and sclite trn (read_trn, write_trn)
  timit.py       TIMIT 61/48 -> 39 phone folding (the repository's Kaldi map), silence tokens
  error_rate.py  jiwer alignment -> corpus error rate, S/D/I counts, per-utterance errors (score, ScoreResult)
  report.py      alignment.txt: summary header and REF/HYP/EVAL rows, worst utterances first
  unit_quality.py, frontend_quality.py  how phone-like a front-end's units are (PNMI, linear probe)
  reference_rows.py  the reference phone of every feature row, by forced alignment (for unit quality)
  chance.py      the PER of label-free guessing from the text's phone frequencies
  __main__.py    the command line: prints the summary, writes result.json, alignment.txt, ref.trn, hyp.trn

Example:
    refs = read_transcripts("exp/timit/text/test.phn")
    hyps = read_transcripts("exp/timit/decode/test.phn")
    result = score(refs, hyps, remove=SILENCE_TOKENS, fold=timit39_map())
    print(result.summary("PER"))
"""

from asr_gan.scoring.error_rate import AlignedToken, ScoreResult, align, score
from asr_gan.scoring.report import format_report, write_report
from asr_gan.scoring.timit import SILENCE_TOKENS, fold_to_39, remove_silence, timit39_map
from asr_gan.scoring.trn import TranscriptFormatError, read_transcripts, read_trn, write_trn

__all__ = [
    "SILENCE_TOKENS",
    "AlignedToken",
    "ScoreResult",
    "TranscriptFormatError",
    "align",
    "fold_to_39",
    "format_report",
    "read_transcripts",
    "read_trn",
    "remove_silence",
    "score",
    "timit39_map",
    "write_report",
    "write_trn",
]
