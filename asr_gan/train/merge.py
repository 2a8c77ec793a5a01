"""Merge runs of one argmax phone: what the discriminator sees of the generator's output.

Segments are shorter than phones (k-means cuts a phone into several), so the generator emits a phone
over several consecutive positions while text has it once. As in wav2vec-U, consecutive positions with the
same argmax become one position: while training ONE randomly chosen position of each run (its logits or
distribution, with gradients), at evaluation the MEAN of the run.
"""

from __future__ import annotations

import torch


def merge_runs(probs: torch.Tensor, padding_mask: torch.Tensor, sample: bool,
               width: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Merge consecutive positions of one argmax.

    Args:
        probs: (B, T, P) phone distributions or logits (the argmax is the same; merged padding rows are zero).
        padding_mask: (B, T) bool, True at padding.
        sample: True: one random position per run; False: the run's mean.
        width: the merged width R; None = the most runs in the batch (read from the device: a host sync).
            A CUDA graph needs one shape, and T always holds every run.

    Returns:
        merged (B, R, P), and its padding mask (B, R).
    """
    batch, length, phones = probs.shape
    valid = ~padding_mask
    best = probs.argmax(dim=-1)
    starts = torch.ones_like(valid)
    starts[:, 1:] = best[:, 1:] != best[:, :-1]
    starts &= valid
    run_id = starts.long().cumsum(dim=1) - 1  # (B, T), the run each position belongs to
    num_runs = starts.sum(dim=1)  # (B,)
    if width is None:
        width = max(int(num_runs.max()), 1)
    # Padding positions go to an extra run `width`, dropped at the end.
    run_id = run_id.masked_fill(~valid, width)
    if sample:
        keys = torch.rand(batch, length, device=probs.device).masked_fill(~valid, -1.0)
        best_key = torch.full((batch, width + 1), -2.0, device=probs.device)
        best_key = best_key.scatter_reduce(1, run_id, keys, reduce="amax")
        chosen = (keys == best_key.gather(1, run_id)) & valid
        weights = chosen.to(probs.dtype)
    else:
        weights = valid.to(probs.dtype)
    merged = torch.zeros(batch, width + 1, phones, device=probs.device, dtype=probs.dtype)
    merged = merged.scatter_add(1, run_id.unsqueeze(-1).expand(-1, -1, phones), probs * weights.unsqueeze(-1))
    counts = torch.zeros(batch, width + 1, device=probs.device, dtype=probs.dtype)
    counts = counts.scatter_add(1, run_id, weights)
    merged = merged[:, :width] / counts[:, :width].clamp(min=1.0).unsqueeze(-1)
    merged_mask = torch.arange(width, device=probs.device)[None, :] >= num_runs[:, None]
    return merged, merged_mask


def join_rows(merged_mask: torch.Tensor, padding_mask: torch.Tensor) -> torch.Tensor:
    """The width R (0-dim tensor) wav2vec-U's JOIN segmenter gives a batch: the most runs of any sequence, where a
    sequence shorter than the batch's longest counts one run more (the reference marks its padding as a symbol of
    its own before merging runs, then blanks that run). Read on the device, so it does not depend on how wide a
    CUDA graph pads the batch.

    Args:
        merged_mask: (B, R') padding mask of merge_runs' output.
        padding_mask: (B, T) padding mask of the positions that were merged.
    """
    runs = (~merged_mask).sum(dim=1)
    lengths = (~padding_mask).sum(dim=1)
    return (runs + (lengths < lengths.max()).long()).max()
