"""Phone alignments, pictured: training curves are asr_gan.train.curves.

An alignment shows a log-mel spectrogram of one utterance with the reference and the hypothesis phones below it
in time. Phone times come from CTM files (NIST's `utt_id channel start duration phone [confidence]`, times in
seconds from the start of the utterance), the format the decoder and the TIMIT .PHN times convert to.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on training machines
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from asr_gan.audio import SAMPLE_RATE, load_audio  # noqa: E402
from asr_gan.ctm import TimedPhone, read_ctm  # noqa: E402
from asr_gan.manifest import read_manifest  # noqa: E402
from asr_gan.train.curves import save_figure  # noqa: E402

SILENCE_PHONES = frozenset({"<SIL>", "sil", "SIL", "<sil>"})


def _overlap(a: TimedPhone, b: TimedPhone) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[1], b[1]))


def hypothesis_matches(reference: Sequence[TimedPhone], hypothesis: Sequence[TimedPhone]) -> list[bool]:
    """Per hypothesis phone: does it carry the label of the reference phone it overlaps most in time?
    (All silence symbols count as one: TIMIT's `sil` matches the generator's `<SIL>`.)"""
    matches = []
    for hyp in hypothesis:
        best = max(reference, key=lambda ref: _overlap(ref, hyp), default=None)
        same = best is not None and (best[0] == hyp[0] or {best[0], hyp[0]} <= SILENCE_PHONES)
        matches.append(same and _overlap(best, hyp) > 0)
    return matches


def _draw_tier(ax, phones: Sequence[TimedPhone], colours: Sequence[str], name: str) -> None:
    """One row of phones: boundaries as vertical lines, labels centred, silence shaded."""
    for (phone, start, end), colour in zip(phones, colours):
        if phone in SILENCE_PHONES:
            ax.axvspan(start, end, color="0.9", linewidth=0)
        ax.axvline(start, color="0.5", linewidth=0.5)
        ax.axvline(end, color="0.5", linewidth=0.5)
        width = end - start
        ax.text((start + end) / 2, 0.5, phone, color=colour, ha="center", va="center", clip_on=True,
                fontsize=7 if width > 0.05 else 5, rotation=90 if len(phone) * 0.025 > width else 0)
    ax.set_yticks([])
    ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)


def plot_alignment(
    wave: np.ndarray,
    sample_rate: int,
    reference: Sequence[TimedPhone],
    hypothesis: Sequence[TimedPhone],
    out_png: str | Path,
    title: str = "",
) -> Path:
    """Log-mel spectrogram with the reference and hypothesis phones in time below it.

    Hypothesis phones are green where they carry the label of the reference phone they overlap most,
    red otherwise; silence is shaded grey in both rows.

    Args:
        wave: (samples,) mono waveform.
        sample_rate: samples per second of `wave`.
        reference, hypothesis: (phone, start_s, end_s) triples, seconds from the start of `wave`.
        out_png: where the picture goes (folders are made).
    """
    import torch
    import torchaudio

    # 25 ms windows, 10 ms hop: the frame grid of the MFCC frontend.
    mel = torchaudio.transforms.MelSpectrogram(sample_rate=sample_rate, n_fft=int(0.025 * sample_rate),
                                               hop_length=int(0.010 * sample_rate), n_mels=80)
    power = mel(torch.from_numpy(np.asarray(wave, dtype=np.float32))).numpy()
    spec_db = 10 * np.log10(power + 1e-10)
    duration = len(wave) / sample_rate
    end = max([duration] + [p[2] for p in list(reference) + list(hypothesis)])
    matches = hypothesis_matches(reference, hypothesis)
    fig, axes = plt.subplots(3, 1, figsize=(min(24.0, max(8.0, 2.5 * end)), 4.2), sharex=True,
                             gridspec_kw={"height_ratios": [5, 1, 1]})
    axes[0].imshow(spec_db, origin="lower", aspect="auto", extent=(0, duration, 0, spec_db.shape[0]), cmap="magma",
                   vmin=spec_db.max() - 80, vmax=spec_db.max())
    axes[0].set_ylabel("mel bin")
    _draw_tier(axes[1], reference, ["tab:blue"] * len(reference), "REF")
    _draw_tier(axes[2], hypothesis, ["tab:green" if m else "tab:red" for m in matches], "HYP")
    axes[2].set_xlim(0, end)
    axes[2].set_xlabel("time (s)")
    matched = (f"{sum(matches)}/{len(matches)} hypothesis phones match the reference in time" if matches
               else "no hypothesis")
    axes[0].set_title(f"{title}: {matched}" if title else matched, fontsize=9)
    fig.tight_layout(h_pad=0.2)
    return save_figure(fig, out_png)


def plot_alignments(
    manifest: str | Path,
    reference_ctm: str | Path,
    hypothesis_ctm: str | Path,
    out_dir: str | Path,
    num: int = 3,
    utt_ids: Sequence[str] | None = None,
) -> list[Path]:
    """`plot_alignment` for the first `num` utterances of `manifest` in the reference CTM (or for `utt_ids`).

    Pictures are written as `out_dir/alignment_<utt_id>.png`; returns their paths. The utterances are those of
    the reference CTM: one with no line in the hypothesis CTM had an empty transcript (a CTM cannot write one)
    and is drawn with an empty hypothesis row.

    Raises:
        ValueError: no utterance of the manifest is in the reference CTM, or the hypothesis CTM has lines but none
            for an utterance of the reference CTM (the two files do not belong together); the message names them.
    """
    reference, hypothesis = read_ctm(reference_ctm), read_ctm(hypothesis_ctm)
    if hypothesis and not set(hypothesis) & set(reference):
        raise ValueError(f"{hypothesis_ctm}: no utterance of {reference_ctm}; the two do not belong together")
    utterances = {u.utt_id: u for u in read_manifest(manifest)}
    wanted = list(utt_ids) if utt_ids is not None else [u for u in utterances if u in reference][:num]
    if not wanted:
        raise ValueError(f"{manifest}: no utterance is in {reference_ctm}")
    pictures = []
    for utt_id in wanted:
        for source, table in ((manifest, utterances), (reference_ctm, reference)):
            if utt_id not in table:
                raise ValueError(f"{source}: no utterance {utt_id!r}")
        utt = utterances[utt_id]
        wave = load_audio(utt.audio, SAMPLE_RATE, utt.start, utt.end)
        pictures.append(plot_alignment(wave, SAMPLE_RATE, reference[utt_id], hypothesis.get(utt_id, []),
                                       Path(out_dir) / f"alignment_{utt_id}.png", title=utt_id))
    return pictures
