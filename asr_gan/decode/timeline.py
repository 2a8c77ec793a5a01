"""Times of generator output positions: which frames each covers, and where VAD-trimmed time lies in the recording."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from asr_gan.audio.io import SAMPLE_RATE


@dataclass
class Timeline:
    """Where each generator output position lies in the original audio, in seconds.

    Attributes:
        starts: (T',) start of each position.
        ends: (T',) end of each position.
    """

    starts: np.ndarray
    ends: np.ndarray

    def span(self, first: int, last: int) -> tuple[float, float]:
        """Seconds covered by positions first..last (inclusive)."""
        return float(self.starts[first]), float(self.ends[last])


def position_frames(segment_frames: np.ndarray, stride: int,
                    positions: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """First frame and end frame (exclusive) of each generator output position.

    Args:
        segment_frames: (S,) frames each segment covers (FeaturePipeline.segments_with_lengths).
        stride: the generator's stride over segments; position j covers segments [j*stride, (j+1)*stride).
        positions: the generator's output positions T' (default ceil(S / stride)); positions past the segments
            (wav2vec-U's padding of an even kernel adds one, asr_gan/models/generator.py) get the last one's frames.

    Returns:
        (first (T',), end (T',)) in frames.
    """
    bounds = np.concatenate([[0], np.cumsum(segment_frames)]).astype(np.int64)
    count = -(-len(segment_frames) // stride)
    if positions is None:
        positions = count
    first_segment = np.minimum(np.arange(positions), max(count - 1, 0)) * stride
    end_segment = np.minimum(first_segment + stride, len(segment_frames))
    return bounds[first_segment], bounds[end_segment]


def speech_to_original(seconds: np.ndarray, spans: list[tuple[int, int]], is_end: bool) -> np.ndarray:
    """Map times in VAD-trimmed audio (speech spans joined end to end) back to the original recording.

    An end time falling exactly on a joint belongs to the earlier span (it ends it), a start time to the later one.
    """
    if not spans:
        return seconds
    starts = np.array([s for s, _ in spans], dtype=np.float64) / SAMPLE_RATE
    lengths = np.array([e - s for s, e in spans], dtype=np.float64) / SAMPLE_RATE
    joined = np.concatenate([[0.0], np.cumsum(lengths)])
    which = np.searchsorted(joined[1:], seconds, side="left" if is_end else "right")
    which = np.clip(which, 0, len(spans) - 1)
    return starts[which] + np.minimum(seconds - joined[which], lengths[which])
