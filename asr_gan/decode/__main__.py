"""`python -m asr_gan.decode`: transcribe audio files, a manifest or stored segment features with a model bundle.

    # files (wav, flac, SPHERE; any sample rate and channel count): `path<TAB>phones`, then `path<TAB>words`
    # when words are decoded; --json prints one JSON object per file with per-phone and per-word times
    python -m asr_gan.decode a.wav b.flac c.sph --model exp/demo/bundle [--decoder greedy|phone_lm|words] [--json]

    # a whole manifest -> DIR/hyp.phn, DIR/hyp.wrd (`utt_id tok ...`, silence removed), scored when refs are given
    python -m asr_gan.decode --manifest data/test.jsonl --model exp/demo/bundle --out exp/demo/decode/test \\
        --ref-phones exp/demo/text/test.phn --ref-words exp/demo/text/test.wrd

    # already segmented features (what the recipes decode for dev/test and the self-training pseudo-labels)
    python -m asr_gan.decode --features-dir exp/demo/feats/mfcc/segments/train --model exp/demo/bundle \\
        --out exp/demo/decode/train --decoder greedy

Decoders: greedy (best path), phone_lm (beam search with the bundle's phone LM), words (lexicon + word LM,
flashlight). Without --decoder the bundle's tuned preference is used, else words when the bundle has a lexicon and a
word LM, else phone_lm when it has a phone LM, else greedy. With words, the phones are those of the decoded words.

A file that cannot be read is reported on stderr with its path and the others are still decoded; the exit code is 1
when any failed, 0 otherwise (2 for a bad command line or bundle). Batch modes list failures in DIR/failed.tsv.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from tqdm import tqdm

from asr_gan.decode.bundle import DECODERS, Bundle, BundleError
from asr_gan.decode.greedy import DecodedToken, greedy_decode, symbols
from asr_gan.decode.timeline import Timeline
from asr_gan.edits import edit_counts


@dataclass
class Transcript:
    """Decoder output for one utterance; positions are generator output positions."""

    phones: list[DecodedToken]
    words: list[DecodedToken] | None  # None when the decoder gives no words


class Transcriber:
    """A bundle's generator output -> phones (and words), with the chosen decoder built once."""

    def __init__(self, bundle: Bundle, decoder: str | None = None) -> None:
        self.bundle = bundle
        self.decoder = decoder or bundle.default_decoder()
        settings = bundle.settings
        if self.decoder not in DECODERS:
            raise BundleError(f"{bundle.directory}: unknown decoder {self.decoder!r}; choose one of {DECODERS}")
        if self.decoder == "phone_lm":
            from asr_gan.decode.phone_beam import PhoneBeamConfig, PhoneLMScorer

            if bundle.phone_lm_path is None:
                raise BundleError(f"{bundle.directory}: the bundle has no phone LM; use --decoder greedy")
            self.phone_lm = PhoneLMScorer(bundle.phone_lm_path)
            self.phone_config = PhoneBeamConfig(lm_weight=settings.phone_lm_weight,
                                                insertion_bonus=settings.insertion_bonus, silence=settings.silence)
        if self.decoder == "words":
            from asr_gan.decode.words import WordDecoder, WordDecoderConfig

            if not bundle.can_decode_words:
                raise BundleError(f"{bundle.directory}: the bundle has no lexicon and word LM; "
                                  "use --decoder greedy or phone_lm")
            self.word_decoder = WordDecoder(
                bundle.lexicon_path, bundle.word_lm_path, bundle.inventory,
                WordDecoderConfig(lm_weight=settings.lm_weight, word_score=settings.word_score,
                                  sil_score=settings.sil_score, beam_size=settings.beam_size))

    def decode(self, log_probs: torch.Tensor) -> Transcript:
        """log_probs: (T', P) of one utterance."""
        if self.decoder == "greedy":
            return Transcript(greedy_decode(log_probs, self.bundle.inventory), None)
        if self.decoder == "phone_lm":
            from asr_gan.decode.phone_beam import phone_beam_search

            return Transcript(phone_beam_search(log_probs, self.bundle.inventory, self.phone_lm, self.phone_config),
                              None)
        hypothesis = self.word_decoder.decode(log_probs)
        return Transcript(hypothesis.phones, hypothesis.words)


# ----------------------------------------------------------------------------------------------------- output


def _timed(tokens: list[DecodedToken], timeline: Timeline | None, key: str) -> list[dict[str, Any]]:
    items = []
    for token in tokens:
        item: dict[str, Any] = {key: token.symbol}
        if timeline is not None and token.first >= 0:
            start, end = timeline.span(token.first, token.last)
            item["start"], item["end"] = round(start, 3), round(end, 3)
        items.append(item)
    return items


def json_record(name: str, transcript: Transcript, timeline: Timeline | None, decoder: str) -> dict[str, Any]:
    """One file's result: phones (and words) as text and with start/end seconds in the original audio."""
    record: dict[str, Any] = {"path": name, "decoder": decoder, "phones": " ".join(symbols(transcript.phones)),
                              "phone_times": _timed(transcript.phones, timeline, "phone")}
    if transcript.words is not None:
        record["words"] = " ".join(symbols(transcript.words))
        record["word_times"] = _timed(transcript.words, timeline, "word")
    return record


def _error_text(name: str, err: Exception) -> str:
    """The error with the file named first (AudioError messages already start with the path)."""
    text = str(err) or type(err).__name__
    return text if text.startswith(name) else f"{name}: {text}"


# ------------------------------------------------------------------------------------------------------ modes


def decode_files(transcriber: Transcriber, paths: list[str], as_json: bool) -> int:
    """Print each file's transcript; returns how many failed."""
    from asr_gan.audio.io import load_audio

    failed = 0
    for path in paths:
        try:
            log_probs, timeline = transcriber.bundle.log_probs(load_audio(path))
            transcript = transcriber.decode(log_probs)
        except Exception as err:  # one bad file must not stop the others
            print(f"error: {_error_text(path, err)}", file=sys.stderr, flush=True)
            failed += 1
            continue
        if as_json:
            print(json.dumps(json_record(path, transcript, timeline, transcriber.decoder)), flush=True)
        else:
            print(f"{path}\t{' '.join(symbols(transcript.phones))}", flush=True)
            if transcript.words is not None:
                print(f"{path}\t{' '.join(symbols(transcript.words))}", flush=True)
    return failed


def _manifest_log_probs(bundle: Bundle, manifest: str) -> Iterator[tuple[int, str, str, Any]]:
    """(position, utt_id, audio path, (log_probs, timeline) or the exception) per manifest line."""
    from asr_gan.manifest import read_manifest

    for position, utt in enumerate(tqdm(read_manifest(manifest), desc="decode", unit="utt")):
        try:
            yield position, utt.utt_id, utt.audio, bundle.log_probs_of_utterance(utt)
        except Exception as err:  # reported per utterance by the caller
            yield position, utt.utt_id, utt.audio, err


def _feature_set_log_probs(bundle: Bundle, features_dir: str,
                           batch_frames: int = 50_000) -> Iterator[tuple[int, str, str, Any]]:
    """(position, utt_id, folder, (log_probs, None)) per stored utterance, in the order of length-sorted batches
    (the generator runs on padded batches; only one batch of outputs is held at a time)."""
    import random

    from asr_gan.features.storage import FeatureSet
    from asr_gan.train.ctc_data import length_batches, pad_batch

    features = FeatureSet(features_dir)
    if features.dim != bundle.generator.input_dim:
        raise BundleError(f"{features_dir}: {features.dim}-dim features, but the generator takes "
                          f"{bundle.generator.input_dim}; decode the segments made with the bundle's transform")
    lengths = [int(n) for n in features.lengths]
    batches = length_batches([max(n, 1) for n in lengths], batch_frames, shuffle=False, rng=random.Random(0))
    source = str(features.directory)
    with tqdm(total=len(features), desc="decode", unit="utt") as progress:
        for batch in batches:
            nonempty = [i for i in batch if lengths[i] > 0]
            outputs = {i: torch.zeros(0, len(bundle.inventory)) for i in batch if lengths[i] == 0}
            if nonempty:
                # A copy of each utterance: torch cannot wrap the read-only memory map.
                x, mask = pad_batch([np.array(features[i], dtype=np.float32) for i in nonempty])
                with torch.no_grad():
                    logits, out_mask = bundle.generator(x, mask)
                log_probs = torch.log_softmax(logits.float(), dim=-1)
                for b, i in enumerate(nonempty):
                    outputs[i] = log_probs[b, : int((~out_mask[b]).sum())].contiguous()
            for i in batch:
                yield i, features.utt_ids[i], source, (outputs[i], None)
                progress.update()


def decode_batch(transcriber: Transcriber, items: Iterator[tuple[int, str, str, Any]], out: Path,
                 as_json: bool) -> tuple[int, int, bool]:
    """Write DIR/hyp.phn (and hyp.wrd, hyp.jsonl, failed.tsv) in input order; returns (decoded, failed, words?)."""
    out.mkdir(parents=True, exist_ok=True)
    phone_lines, word_lines, records, failures = {}, {}, {}, {}
    for position, utt_id, source, result in items:
        try:
            if isinstance(result, Exception):
                raise result
            log_probs, timeline = result
            transcript = transcriber.decode(log_probs)
        except Exception as err:  # one bad utterance must not stop the others
            message = _error_text(source, err)
            tqdm.write(f"error: {utt_id}: {message}", file=sys.stderr)
            failures[position] = f"{utt_id}\t{message}\n"
            continue
        phone_lines[position] = " ".join([utt_id, *symbols(transcript.phones)]) + "\n"
        if transcript.words is not None:
            word_lines[position] = " ".join([utt_id, *symbols(transcript.words)]) + "\n"
        if as_json:
            record = {"utt_id": utt_id, **json_record(source, transcript, timeline, transcriber.decoder)}
            records[position] = json.dumps(record) + "\n"
    _write_text(out / "hyp.phn", phone_lines)
    if transcriber.decoder == "words":
        _write_text(out / "hyp.wrd", word_lines)
    if as_json:
        _write_text(out / "hyp.jsonl", records)
    _write_text(out / "failed.tsv", failures)
    return len(phone_lines), len(failures), transcriber.decoder == "words"


def _write_text(path: Path, lines: dict[int, str]) -> None:
    """Write lines in input order, through a temporary file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(lines[k] for k in sorted(lines)), encoding="utf-8")
    tmp.replace(path)


def score_hypotheses(ref_path: str, hyp_path: Path, remove: tuple[str, ...]) -> dict[str, Any]:
    """Error rate of a hypothesis file against a reference file (`utt_id tok ...`), `remove` tokens dropped.

    The edits are asr_gan.edits' (the ones `asr-gan score` counts); a reference utterance without a hypothesis
    counts as all deletions. `asr-gan score` adds folding, sclite files and the per-utterance report.
    """
    from asr_gan.train.ctc_data import read_phone_labels

    refs, hyps = read_phone_labels(ref_path), read_phone_labels(hyp_path)
    skip = set(remove)
    substitutions = deletions = insertions = tokens = 0
    for utt, ref in refs.items():
        ref = [t for t in ref if t not in skip]
        counts = edit_counts(ref, [t for t in hyps.get(utt, []) if t not in skip])
        substitutions, deletions = substitutions + counts.substitutions, deletions + counts.deletions
        insertions, tokens = insertions + counts.insertions, tokens + len(ref)
    errors = substitutions + deletions + insertions
    rate = errors / max(tokens, 1)
    return {"error_rate": rate, "error_rate_percent": round(100 * rate, 2), "errors": errors,
            "substitutions": substitutions, "deletions": deletions, "insertions": insertions, "ref_tokens": tokens,
            "utterances": len(refs), "missing": sorted(set(refs) - set(hyps))}


# ---------------------------------------------------------------------------------------------------- command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m asr_gan.decode", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("audio", nargs="*", help="audio files to transcribe (wav, flac, SPHERE)")
    parser.add_argument("--model", required=True, help="bundle folder (asr_gan.decode.bundle)")
    parser.add_argument("--decoder", choices=DECODERS, help="default: the bundle's preference (see above)")
    parser.add_argument("--json", action="store_true",
                        help="one JSON object per file with times (batch modes: also DIR/hyp.jsonl)")
    parser.add_argument("--manifest", help="decode every utterance of a JSONL manifest (needs --out)")
    parser.add_argument("--features-dir", help="decode a stored FeatureSet of segments (needs --out)")
    parser.add_argument("--out", help="output folder of the batch modes")
    parser.add_argument("--ref-phones", help="batch modes: score hyp.phn against this `utt_id ph ...` file")
    parser.add_argument("--ref-words", help="batch modes: score hyp.wrd against this `utt_id word ...` file")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    modes = [bool(args.audio), bool(args.manifest), bool(args.features_dir)]
    if sum(modes) != 1:
        parser.error("give audio files, or --manifest, or --features-dir (exactly one)")
    if (args.manifest or args.features_dir) and not args.out:
        parser.error("--manifest and --features-dir need --out DIR")
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    try:
        bundle = Bundle.load(args.model)
        transcriber = Transcriber(bundle, args.decoder)
    except (BundleError, OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.audio:
        return 1 if decode_files(transcriber, args.audio, args.json) else 0

    out = Path(args.out)
    try:
        items = (_manifest_log_probs(bundle, args.manifest) if args.manifest
                 else _feature_set_log_probs(bundle, args.features_dir))
        decoded, failed, has_words = decode_batch(transcriber, items, out, args.json)
    except (BundleError, OSError, ValueError) as err:  # an unreadable manifest or feature folder
        print(f"error: {err}", file=sys.stderr)
        return 2
    result: dict[str, Any] = {"model": str(bundle.directory), "decoder": transcriber.decoder, "decoded": decoded,
                              "failed": failed, "seconds": round(time.perf_counter() - started, 2)}
    silence = (bundle.inventory.silence,) if bundle.inventory.silence else ()
    if args.ref_phones:
        result["phones"] = score_hypotheses(args.ref_phones, out / "hyp.phn", silence)
        print(f"PER {result['phones']['error_rate_percent']:.2f}% ({out / 'hyp.phn'} vs {args.ref_phones})")
    if args.ref_words:
        if has_words:
            result["words"] = score_hypotheses(args.ref_words, out / "hyp.wrd", ())
            print(f"WER {result['words']['error_rate_percent']:.2f}% ({out / 'hyp.wrd'} vs {args.ref_words})")
        else:
            print(f"--ref-words ignored: decoder {transcriber.decoder} gives no words", file=sys.stderr)
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"{out}: {decoded} utterances decoded with {transcriber.decoder}, {failed} failed "
          f"({result['seconds']:.1f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
