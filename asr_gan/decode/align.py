"""`python -m asr_gan.decode.align`: reference and hypothesis phones with times, for alignment pictures.

For the first few utterances of a manifest it writes two CTM files (`utt_id 1 start duration phone`, seconds
from the start of the utterance), which `python -m asr_gan.results --ref-ctm --hyp-ctm` draws under the
spectrogram:

  OUT/hyp.ctm   the bundle's transcript (its tuned decoder unless --decoder), each phone at the generator output
                positions it came from, mapped back to the audio through the segmentation (and the VAD)
  OUT/ref.ctm   the reference phones in time, from either
                  --reference-ctm FILE   true times (TIMIT's .PHN, written by data_prep.timit as <split>.ref.ctm)
                  --ctc-checkpoint CKPT  a forced alignment of --references (`utt_id phone ...`) with a supervised
                                         CTC model on the same segments (the recipes' topline), when the corpus has
                                         no time-marked phones (the demo, LibriSpeech)

Examples:
  python -m asr_gan.decode.align --manifest exp/demo/data/test.jsonl --model exp/demo/bundle \\
      --ctc-checkpoint exp/demo/topline/checkpoint_best.pt --references exp/demo/text/test.phn \\
      --out exp/demo/decode/test/align
  python -m asr_gan.decode.align --manifest exp/timit/data/test.jsonl --model exp/timit/bundle \\
      --reference-ctm exp/timit/data/test.ref.ctm --out exp/timit/decode/test/align

A forced alignment gives each reference phone the positions from where the CTC model first emits it to where it
last does, stretched over the blanks up to the next phone when they last under 0.1 s (CTC models emit a phone on
few positions and blanks on the rest); longer gaps, and the audio before the first and after the last phone,
become silence (the topline is trained without silence tokens, so a pause can only show as a long blank run). An
utterance that cannot be read or aligned is reported with its file and skipped, and the next one is taken instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from asr_gan.audio.io import SAMPLE_RATE
from asr_gan.decode.bundle import Bundle, BundleError
from asr_gan.decode.timeline import Timeline
from asr_gan.manifest import Utterance, read_manifest

TimedPhone = tuple[str, float, float]  # (phone, start seconds, end seconds)

SILENCE = "<SIL>"
# Blanks between two phones lasting under this many seconds belong to the earlier phone; longer, they are a pause.
_PAUSE_S = 0.1


class AlignmentError(ValueError):
    """An utterance that cannot be aligned (too short for its reference, unknown phones)."""


def token_spans(path: Sequence[int], blank: int) -> list[tuple[int, int]]:
    """CTC path -> (first, last) position of each emitted token, in order (a repeat after a blank is a new token).

    Example: path [b, 3, 3, b, 3, 5, b] -> [(1, 2), (4, 4), (5, 5)].
    """
    spans: list[tuple[int, int]] = []
    previous = blank
    for t, label in enumerate(path):
        if label != blank and label == previous:
            spans[-1] = (spans[-1][0], t)
        elif label != blank:
            spans.append((t, t))
        previous = label
    return spans


def spans_to_times(phones: Sequence[str], spans: Sequence[tuple[int, int]], timeline: Timeline,
                   duration: float, silence: str = SILENCE) -> list[TimedPhone]:
    """Reference phones at their CTC positions -> a gapless tier in seconds, silence in the gaps."""
    if len(phones) != len(spans):
        raise AlignmentError(f"{len(phones)} phones but {len(spans)} aligned tokens")
    timed: list[TimedPhone] = []
    cursor = 0.0
    for k, (phone, (first, last)) in enumerate(zip(phones, spans)):
        start = float(timeline.starts[first])
        end = float(timeline.ends[last])
        if k + 1 < len(spans) and float(timeline.starts[spans[k + 1][0]]) - end < _PAUSE_S:
            end = float(timeline.starts[spans[k + 1][0]])
        if start > cursor:
            timed.append((silence, cursor, start))
        timed.append((phone, start, end))
        cursor = end
    if duration > cursor:
        timed.append((silence, cursor, duration))
    return timed


class CTCReference:
    """Forced alignment of reference phones with a supervised CTC model over the bundle's segments."""

    def __init__(self, checkpoint: str | Path, references: dict[str, list[str]]) -> None:
        from asr_gan.train.ctc import load_ctc_checkpoint

        self.model, self.inventory, saved = load_ctc_checkpoint(checkpoint)
        self.upsample = int(saved.get("config", {}).get("upsample", 1))
        self.stride = int(getattr(self.model.encoder, "stride", 1))
        self.references = references
        self.source = str(checkpoint)

    def align(self, bundle: Bundle, utt_id: str, wave: np.ndarray, segments: np.ndarray,
              segment_frames: np.ndarray) -> list[TimedPhone]:
        import torchaudio.functional as F

        if utt_id not in self.references:
            raise AlignmentError(f"no reference phones for {utt_id}")
        phones = [p for p in self.references[utt_id] if p != self.inventory.silence]
        unknown = sorted({p for p in phones if p not in self.inventory})
        if unknown:
            raise AlignmentError(f"phones {unknown} are not in the CTC model's inventory ({self.source})")
        if segments.shape[1] != self.model.input_dim:
            raise AlignmentError(f"{segments.shape[1]}-dim segments, but {self.source} takes {self.model.input_dim}")
        x = torch.from_numpy(np.array(segments, dtype=np.float32)).unsqueeze(0)
        with torch.no_grad():
            logits, _ = self.model(x, torch.zeros(1, len(segments), dtype=torch.bool))
        log_probs = torch.log_softmax(logits.float().repeat_interleave(self.upsample, dim=1), dim=-1)
        targets = torch.tensor([self.inventory.encode(phones)], dtype=torch.int32)
        repeats = sum(a == b for a, b in zip(phones, phones[1:]))
        if log_probs.shape[1] < len(phones) + repeats:
            raise AlignmentError(f"{log_probs.shape[1]} CTC positions cannot hold {len(phones)} reference phones")
        path, _ = F.forced_align(log_probs, targets, blank=self.model.blank)
        spans = token_spans(path[0].tolist(), self.model.blank)
        timeline = bundle.timeline(wave, segment_frames, self.stride, parts=self.upsample, positions=logits.shape[1])
        silence = bundle.inventory.silence or SILENCE
        return spans_to_times(phones, spans, timeline, len(wave) / SAMPLE_RATE, silence)


def hypothesis_times(transcriber, log_probs: torch.Tensor, timeline: Timeline) -> list[TimedPhone]:
    """The transcriber's phones with the seconds of the positions each covers."""
    transcript = transcriber.decode(log_probs)
    return [(token.symbol, *timeline.span(token.first, token.last)) for token in transcript.phones if token.first >= 0]


def write_ctm(path: Path, timed: dict[str, list[TimedPhone]]) -> None:
    """CTM lines `utt_id 1 start duration phone`, utterances in the given order, written through a temporary file."""
    lines = [f"{utt_id} 1 {start:.4f} {end - start:.4f} {phone}\n"
             for utt_id, phones in timed.items() for phone, start, end in phones]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(lines), encoding="utf-8")
    tmp.replace(path)


def align_utterances(bundle: Bundle, utterances: Sequence[Utterance], num: int, decoder: str | None,
                     reference_ctm: dict[str, list[TimedPhone]] | None, ctc: CTCReference | None,
                     ) -> tuple[dict[str, list[TimedPhone]], dict[str, list[TimedPhone]], list[str]]:
    """(hypotheses, references, failures) for the first `num` utterances that can be aligned."""
    from asr_gan.audio.io import load_audio
    from asr_gan.decode.__main__ import Transcriber

    transcriber = Transcriber(bundle, decoder)
    hyps: dict[str, list[TimedPhone]] = {}
    refs: dict[str, list[TimedPhone]] = {}
    failures: list[str] = []
    for utt in utterances:
        if len(hyps) == num:
            break
        if reference_ctm is not None and utt.utt_id not in reference_ctm:
            continue
        try:
            wave = load_audio(utt.audio, start=utt.start, end=utt.end)
            segments, segment_frames = bundle.segments(wave, utt.speaker)
            log_probs = bundle.log_probs_of_segments(segments)
            timeline = bundle.timeline(wave, segment_frames, bundle.generator.stride, positions=len(log_probs))
            hyp = hypothesis_times(transcriber, log_probs, timeline)
            if ctc is not None:
                ref = ctc.align(bundle, utt.utt_id, wave, segments, segment_frames)
            else:
                ref = reference_ctm[utt.utt_id]  # type: ignore[index]
        except Exception as err:  # one bad utterance must not stop the others
            text = str(err) or type(err).__name__
            failures.append(f"{utt.utt_id}: {text if utt.audio in text else f'{utt.audio}: {text}'}")
            continue
        hyps[utt.utt_id], refs[utt.utt_id] = hyp, ref
    return hyps, refs, failures


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m asr_gan.decode.align", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", required=True, help="utterances (JSONL manifest); the first --num are aligned")
    parser.add_argument("--model", required=True, help="model bundle (asr_gan.decode.make_bundle)")
    parser.add_argument("--out", required=True, type=Path, help="folder for hyp.ctm and ref.ctm")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--reference-ctm", type=Path, help="reference phones with true times (CTM)")
    source.add_argument("--ctc-checkpoint", type=Path, help="supervised CTC model that force-aligns --references")
    parser.add_argument("--references", type=Path, help="reference phones `utt_id phone ...` (with --ctc-checkpoint)")
    parser.add_argument("--num", type=int, default=3, help="utterances to align (default 3)")
    parser.add_argument("--decoder", choices=("greedy", "phone_lm", "words"),
                        help="hypothesis decoder (default: the bundle's tuned choice)")
    return parser


def main(argv: list[str] | None = None) -> int:
    from asr_gan.ctm import read_ctm
    from asr_gan.train.ctc_data import read_phone_labels

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.ctc_checkpoint is not None and args.references is None:
        parser.error("--ctc-checkpoint needs --references (the reference phones to align)")
    if args.num < 1:
        parser.error(f"--num must be >= 1, got {args.num}")
    try:
        bundle = Bundle.load(args.model)
        utterances = read_manifest(args.manifest)
        reference_ctm = read_ctm(args.reference_ctm) if args.reference_ctm is not None else None
        ctc = CTCReference(args.ctc_checkpoint, read_phone_labels(args.references)) if args.ctc_checkpoint else None
    except (BundleError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    hyps, refs, failures = align_utterances(bundle, utterances, args.num, args.decoder, reference_ctm, ctc)
    for failure in failures:
        print(f"error: {failure}", file=sys.stderr)
    if not hyps:
        print(f"error: {args.manifest}: no utterance could be aligned", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    write_ctm(args.out / "hyp.ctm", hyps)
    write_ctm(args.out / "ref.ctm", refs)
    how = f"true times from {args.reference_ctm}" if ctc is None else f"forced alignment with {args.ctc_checkpoint}"
    print(f"aligned {len(hyps)} utterances ({how}) -> {args.out}/hyp.ctm, ref.ctm"
          + (f"; {len(failures)} skipped" if failures else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
