r"""`python -m asr_gan.scoring`: score a hypothesis file against a reference file (PER or WER).

Both files are Kaldi `text` style, `utt_id tok1 tok2 ...` per line (`text/<split>.phn`, `text/<split>.wrd`).

Examples:
  python -m asr_gan.scoring --ref exp/timit/text/test.phn --hyp exp/timit/decode/test.phn \
      --fold-timit39 --remove-silence --out exp/timit/decode/score_test
  python -m asr_gan.scoring --ref exp/ls/text/test.wrd --hyp exp/ls/decode/test.wrd --out exp/ls/decode/score

Prints one line to stdout, e.g. `PER 23.41% (N=1234 S=150 D=80 I=59) on 50 utterances`; warnings go to stderr.
With --out it writes there:
  result.json    totals, missing / extra utterance ids, the options used
  alignment.txt  REF/HYP/EVAL alignment of every utterance, worst first (asr_gan.scoring.report)
  ref.trn, hyp.trn  the scored tokens (after folding / silence removal) in sclite trn format; missing utterances
                 appear in hyp.trn as empty transcripts `(utt_id)`, so `sclite -r ref.trn trn -h hyp.trn trn -i rm`
                 sees the same set
Exit status: 0 when scored (also with missing utterances), 1 when a file cannot be read or nothing can be scored.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import sys
from collections import Counter
from pathlib import Path

from asr_gan.scoring.error_rate import ScoreResult, score
from asr_gan.scoring.report import write_report
from asr_gan.scoring.timit import SILENCE_TOKENS, timit39_map, timit_map_path
from asr_gan.scoring.trn import read_transcripts, write_trn

# How many utterance ids / unknown tokens a warning names before it points at result.json instead.
_NAMES_IN_WARNING = 20


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m asr_gan.scoring", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.split("\n")[2:]))
    parser.add_argument("--ref", required=True, help="reference transcripts, `utt_id tok ...` per line")
    parser.add_argument("--hyp", required=True, help="hypothesis transcripts, `utt_id tok ...` per line")
    parser.add_argument("--unit", choices=("phone", "word"),
                        help="what the tokens are: reports PER or WER (default: word for a .wrd reference, else phone)")
    parser.add_argument("--fold-timit39", action="store_true",
                        help="fold TIMIT 61/48-set phones to the 39 scoring phones on both sides (q deleted)")
    parser.add_argument("--remove-silence", action="store_true",
                        help=f"drop silence tokens ({' '.join(SILENCE_TOKENS)}) from both sides before scoring")
    parser.add_argument("--out", help="folder for result.json, alignment.txt, ref.trn, hyp.trn")
    args = parser.parse_args(argv)
    if args.unit is None:
        args.unit = "word" if Path(args.ref).suffix == ".wrd" else "phone"
    if args.fold_timit39 and args.unit == "word":
        parser.error("--fold-timit39 folds phones; it cannot be used with --unit word")
    return args


def _warn(message: str) -> None:
    print(f"[scoring] warning: {message}", file=sys.stderr)


def _names(ids: list[str]) -> str:
    shown = " ".join(ids[:_NAMES_IN_WARNING])
    return shown + (f" ... ({len(ids) - _NAMES_IN_WARNING} more, all listed in result.json)"
                    if len(ids) > _NAMES_IN_WARNING else "")


def _warn_unknown_timit_phones(refs: dict[str, list[str]], hyps: dict[str, list[str]], removed: set[str]) -> None:
    """Tokens the TIMIT map lacks are scored unchanged, which is almost always a mistake worth a warning."""
    known = timit39_map()
    unknown: Counter[str] = Counter()
    for transcripts in (refs, hyps):
        for utt_id, tokens in transcripts.items():
            if utt_id in refs:
                unknown.update(token for token in tokens if token not in known and token not in removed)
    if unknown:
        listed = ", ".join(f"{token} (x{count})" for token, count in unknown.most_common(_NAMES_IN_WARNING))
        _warn(f"tokens not in the TIMIT map {timit_map_path().name}, scored unchanged: {listed}")


def write_outputs(out_dir: Path, result: ScoreResult, metric: str, settings: dict[str, object]) -> None:
    """result.json, alignment.txt, ref.trn and hyp.trn in `out_dir` (created)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    record = {"metric": metric, **result.totals(), **settings}
    (out_dir / "result.json").write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    header = [f"{key}: {value}" for key, value in settings.items()]
    write_report(out_dir / "alignment.txt", result, metric, header)
    write_trn(out_dir / "ref.trn", {utt_id: ref for utt_id, ref, _, _ in result.per_utterance})
    write_trn(out_dir / "hyp.trn", {utt_id: hyp for utt_id, _, hyp, _ in result.per_utterance})


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    metric = "WER" if args.unit == "word" else "PER"
    removed = set(SILENCE_TOKENS) if args.remove_silence else set()
    try:
        refs = read_transcripts(args.ref)
        hyps = read_transcripts(args.hyp)
        fold = timit39_map() if args.fold_timit39 else None
        if args.fold_timit39:
            _warn_unknown_timit_phones(refs, hyps, removed)
        result = score(refs, hyps, remove=removed, fold=fold)
    except (OSError, ValueError) as err:
        print(f"[scoring] error: {err}", file=sys.stderr)
        return 1
    if result.missing:
        _warn(f"{len(result.missing)} of {len(refs)} reference utterances are missing from {args.hyp}; "
              f"scored as all deletions: {_names(result.missing)}")
    if result.extra:
        _warn(f"{len(result.extra)} utterances of {args.hyp} are not in {args.ref}; ignored: {_names(result.extra)}")
    print(result.summary(metric))
    if args.out:
        settings = {
            "unit": args.unit,
            "ref": str(args.ref),
            "hyp": str(args.hyp),
            "fold_timit39": args.fold_timit39,
            "removed_tokens": sorted(removed),
            "aligner": f"jiwer {importlib.metadata.version('jiwer')} (Levenshtein, unit costs)",
        }
        try:
            write_outputs(Path(args.out), result, metric, settings)
        except (OSError, ValueError) as err:
            print(f"[scoring] error: writing {args.out}: {err}", file=sys.stderr)
            return 1
        print(f"[scoring] wrote result.json, alignment.txt, ref.trn, hyp.trn to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
