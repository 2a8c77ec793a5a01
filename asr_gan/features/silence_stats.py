"""Where the training audio is silent: the statistics that the text's silence tokens should follow.

The GAN's discriminator compares the generator's phone strings with phonemised text. Silence tokens in that
text (at the sentence edges, and between words with probability `sil_prob`) must occur about as often as the
audio holds silence the segmenter can cut; otherwise even a perfect transcription of the audio differs from
the text, and the discriminator pushes the generator off it (docs/gan_investigation.md, "Silence in the text
and in the audio"). TTS voices differ: espeak-ng starts speaking at the first sample and ends with a pause,
flite pads both ends, and neither pauses between words without punctuation.

Per utterance, on the waveform the feature extractor sees (after the energy VAD when `--vad` is given, as in
`python -m asr_gan.features extract --vad`): frame energies, 25 ms windows every 10 ms, and a speech/silence
decision per frame from `asr_gan.features.vad.speech_mask` with a 10 ms hangover (so pauses are not bridged).
Counted:
- a leading (trailing) silence: the first (last) `min_edge` seconds or more are silence;
- an inner pause: a run of silence of at least `min_pause` seconds between two stretches of speech.

Writes a JSON report: `utterances` measured, `leading` and `trailing` (share of utterances with one),
`inner_per_utterance` (mean number of inner pauses), the settings, and `skipped` (unreadable utterances, each
with the reason; they are reported and left out, the rest is measured). `python -m asr_gan.text
--silence-stats` turns it into silence probabilities for the text.

CLI: python -m asr_gan.features.silence_stats --manifest data/train.jsonl --out text/audio_silences.json [--vad]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from asr_gan.audio import SAMPLE_RATE, AudioError, load_audio
from asr_gan.features.vad import VadConfig, frame_runs, remove_silence, speech_mask
from asr_gan.manifest import Utterance, read_manifest

# The speech/silence decision for counting: the extractor's VAD thresholds without its 150 ms hangover,
# which would hide pauses under 300 ms.
MEASURE_VAD = replace(VadConfig(), hangover_ms=10.0)


@dataclass
class SilenceStats:
    """Silence at the edges of and inside the utterances of one manifest (module docstring)."""

    manifest: str
    utterances: int
    leading: float
    trailing: float
    inner_per_utterance: float
    min_edge: float
    min_pause: float
    vad: bool
    sample: int
    skipped: list[dict[str, str]] = field(default_factory=list)


def utterance_silences(wave: np.ndarray, min_edge: float = 0.05, min_pause: float = 0.1) -> tuple[bool, bool, int]:
    """(leading silence, trailing silence, inner pauses) of one 16 kHz waveform."""
    silent = ~speech_mask(wave, MEASURE_VAD)
    if not silent.any() or silent.all():  # speech throughout, or nothing to measure silence against
        return False, False, 0
    hop = MEASURE_VAD.frame_shift_ms / 1000
    edge, pause = max(1, round(min_edge / hop)), max(1, round(min_pause / hop))
    starts, ends = frame_runs(silent)
    leading = bool(starts[0] == 0 and ends[0] >= edge)
    trailing = bool(ends[-1] == len(silent) and ends[-1] - starts[-1] >= edge)
    inner = int(np.sum((starts > 0) & (ends < len(silent)) & (ends - starts >= pause)))
    return leading, trailing, inner


def measure(manifest: str | Path, vad: bool = False, min_edge: float = 0.05, min_pause: float = 0.1,
            sample: int = 2000, seed: int = 0, progress: bool = True) -> SilenceStats:
    """Silence statistics of `sample` utterances of `manifest` drawn at random (0: all of them)."""
    utterances: list[Utterance] = read_manifest(manifest)
    if not utterances:
        raise ValueError(f"{manifest}: no utterances")
    if 0 < sample < len(utterances):
        chosen = np.sort(np.random.default_rng(seed).choice(len(utterances), sample, replace=False))
        utterances = [utterances[i] for i in chosen]
    leading = trailing = inner = measured = 0
    skipped: list[dict[str, str]] = []
    for utt in tqdm(utterances, desc="[silence_stats]", unit=" utt", disable=not progress, dynamic_ncols=True):
        try:
            wave = load_audio(utt.audio, SAMPLE_RATE, utt.start, utt.end)
        except AudioError as err:
            skipped.append({"utt_id": utt.utt_id, "reason": str(err)})
            continue
        if vad:
            wave, _ = remove_silence(wave, VadConfig())
        lead, trail, pauses = utterance_silences(wave, min_edge, min_pause)
        leading, trailing, inner, measured = leading + lead, trailing + trail, inner + pauses, measured + 1
    if measured == 0:
        raise ValueError(f"{manifest}: none of {len(utterances)} utterances could be read "
                         f"(first problem: {skipped[0]['reason']})")
    return SilenceStats(str(manifest), measured, round(leading / measured, 4), round(trailing / measured, 4),
                        round(inner / measured, 4), min_edge, min_pause, vad, sample, skipped)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asr_gan.features.silence_stats",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--manifest", required=True, help="the training audio's manifest (JSON lines)")
    parser.add_argument("--out", required=True, help="JSON report to write")
    parser.add_argument("--vad", action="store_true", help="measure after the energy VAD, as `extract --vad` does")
    parser.add_argument("--min-edge", type=float, default=0.05, help="seconds of silence that count at an edge")
    parser.add_argument("--min-pause", type=float, default=0.1, help="seconds of silence that count as a pause")
    parser.add_argument("--sample", type=int, default=2000, help="utterances to measure, drawn at random (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        stats = measure(args.manifest, args.vad, args.min_edge, args.min_pause, args.sample, args.seed,
                        not args.no_progress)
    except (FileNotFoundError, ValueError) as err:
        print(f"[silence_stats] error: {err}", file=sys.stderr)
        return 1
    for problem in stats.skipped:
        print(f"[silence_stats] skipped {problem['utt_id']}: {problem['reason']}", file=sys.stderr)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(asdict(stats), indent=1) + "\n", encoding="utf-8")
    tmp.replace(out)
    print(f"[silence_stats] {stats.utterances} utterances: leading silence {stats.leading:.0%}, trailing "
          f"{stats.trailing:.0%}, {stats.inner_per_utterance:.2f} inner pauses each -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
