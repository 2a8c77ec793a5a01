"""`asr-gan <verb> ...`: one entry point over the pipeline's commands, in the order the data flows.

Each verb hands its arguments to a module's own command line (`asr-gan features --help` is
`python -m asr_gan.features --help`); the modules stay runnable with `python -m` as before.
"""

from __future__ import annotations

import importlib
import sys

# verb -> (module whose main() runs it, what it does)
VERBS: dict[str, tuple[str, str]] = {
    "prepare-timit": ("data_prep.timit", "a TIMIT tree -> manifests, references, time marks"),
    "prepare-librispeech": ("data_prep.librispeech", "LibriSpeech subsets -> manifests and references"),
    "prepare-kaldi": ("data_prep.kaldi_dir", "a Kaldi data dir (wav.scp, text, ...) -> manifests"),
    "prepare-demo": ("data_prep.demo", "the embedded TTS demo corpus (espeak-ng, flite)"),
    "text": ("asr_gan.text.__main__", "words -> phones, lexicon, phone and word LMs"),
    "features": ("asr_gan.features.__main__", "audio -> frames (MFCC, fbank, encoder, SSL layer) -> segments"),
    "train": ("asr_gan.train.__main__", "one GAN run: segments + unpaired phone text -> a generator"),
    "sweep": ("asr_gan.train.sweep", "GAN runs over seeds and settings, chosen without labels"),
    "eodm": ("asr_gan.train.eodm", "EODM: a generator matching the text's phone N-grams, no discriminator"),
    "ctc": ("asr_gan.train.ctc", "a supervised CTC phone model (the topline)"),
    "refine": ("asr_gan.decode.refine", "the label-free chain: encoder phones -> words -> rounds"),
    "decode": ("asr_gan.decode.__main__", "audio or features -> phones -> words, with a model bundle"),
    "score": ("asr_gan.scoring.__main__", "hypotheses against references -> PER / WER"),
    "results": ("asr_gan.results.__main__", "an experiment's scores -> RESULTS.md, RESULTS.json, pictures"),
}


def usage() -> str:
    width = max(len(v) for v in VERBS)
    lines = ["usage: asr-gan <verb> [arguments]   (asr-gan <verb> --help for a verb's own options)", "",
             "verbs, from audio to a score:"]
    lines += [f"  {verb:<{width}}  {text}" for verb, (_, text) in VERBS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    verb, rest = args[0], args[1:]
    if verb not in VERBS:
        print(f"asr-gan: unknown verb {verb!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(VERBS[verb][0])
    sys.argv = [f"asr-gan {verb}", *rest]
    try:
        result = module.main(rest)
    except SystemExit as done:  # argparse exits for --help and bad arguments
        return int(done.code or 0)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
