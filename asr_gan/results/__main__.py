"""`python -m asr_gan.results`: collect an experiment folder into RESULTS.md and RESULTS.json, with pictures.

Examples:
  python -m asr_gan.results --exp exp/demo                      # everything found under exp/demo
  python -m asr_gan.results --exp exp/timit_matched --no-discover \\
      --scores test=exp/timit_matched/decode/test/result.json dev=exp/timit_matched/decode/dev/result.json \\
      --sweep exp/timit_matched/sweep/sweep.json
  python -m asr_gan.results --exp exp/demo --manifest exp/demo/data/test.jsonl \\
      --ref-ctm exp/demo/decode/test/ref.ctm --hyp-ctm exp/demo/decode/test/hyp.ctm   # alignment pictures
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from asr_gan.results.collect import ResultFileError, ResultSpec, collect
from asr_gan.results.summary import draw_pictures, write_summary


def _named_paths(items: list[str], option: str, parser: argparse.ArgumentParser) -> dict[str, Path]:
    """`NAME=PATH` (or a bare PATH, named by its folder) -> {name: path}; a missing file is a usage error."""
    named: dict[str, Path] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep:
            name, path = Path(item).parent.name or item, item
        if not name or not path:
            parser.error(f"{option} {item!r}: expected NAME=PATH")
        if not Path(path).is_file():
            parser.error(f"{option} {item!r}: {path} not found")
        named[name] = Path(path)
    return named


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m asr_gan.results", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp", required=True, type=Path, help="experiment folder (exp/<name>)")
    parser.add_argument("--out", type=Path, help="where RESULTS.md, RESULTS.json and pictures/ go (default: --exp)")
    parser.add_argument("--scores", nargs="*", default=[], metavar="NAME=PATH",
                        help="scoring result.json files (error_rate, errors, ref_tokens, unit) under a name")
    parser.add_argument("--sweep", nargs="*", default=[], type=Path, metavar="PATH", help="sweep.json files")
    parser.add_argument("--metrics", nargs="*", default=[], metavar="NAME=PATH",
                        help="metrics.jsonl files to draw training curves of")
    parser.add_argument("--no-discover", action="store_true",
                        help="only the files named here, nothing found under --exp")
    parser.add_argument("--no-pictures", action="store_true", help="write no PNG files")
    parser.add_argument("--manifest", type=Path, help="alignment pictures: the manifest of the utterances' audio")
    parser.add_argument("--ref-ctm", type=Path, help="alignment pictures: reference phones with times (CTM)")
    parser.add_argument("--hyp-ctm", type=Path, help="alignment pictures: hypothesis phones with times (CTM)")
    parser.add_argument("--num-alignments", type=int, default=3, help="utterances to draw (default 3)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    alignment_args = [args.manifest, args.ref_ctm, args.hyp_ctm]
    if any(alignment_args) and not all(alignment_args):
        parser.error("alignment pictures need all of --manifest, --ref-ctm and --hyp-ctm")
    for path in args.sweep:
        if not path.is_file():
            parser.error(f"--sweep {path}: not found")
    spec = ResultSpec(exp=args.exp, scores=_named_paths(args.scores, "--scores", parser), sweeps=list(args.sweep),
                      metrics=_named_paths(args.metrics, "--metrics", parser), discover=not args.no_discover)
    out = args.out or args.exp
    try:
        summary = collect(spec)
        if not args.no_pictures:
            alignments = None
            if all(alignment_args):
                alignments = {"manifest": args.manifest, "reference_ctm": args.ref_ctm,
                              "hypothesis_ctm": args.hyp_ctm, "num": args.num_alignments}
            draw_pictures(summary, Path(out), alignments)
    except (ResultFileError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    md, js = write_summary(summary, out)
    for score in summary.scores:
        print(f"{score.name}: {score.metric} {100 * score.error_rate:.2f}% ({score.errors}/{score.ref_tokens})")
    for selection in summary.selections:
        print(f"{selection.name}: selected {selection.selected} (lowest {selection.metric_key})")
    for note in summary.notes:
        print(f"note: {note}")
    print(f"wrote {md}, {js} and {len(summary.pictures)} pictures")
    return 0


if __name__ == "__main__":
    sys.exit(main())
