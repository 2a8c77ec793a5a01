"""Validation of the GAN's generator and the label-free choice of its best checkpoint.

`GanValidation` is the part of `GanTrainer` (asr_gan/train/gan.py) that decodes the unlabelled validation audio,
scores it with the label-free metric `weighted_lm_ppl` (asr_gan/train/selection.py; PER too when references
were given), and every `valid_interval` updates writes `checkpoint_last.pt` and, when the metric improved after
`select_after`, `checkpoint_best.pt`.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from tqdm import tqdm

from asr_gan.train.checkpoint import save_checkpoint
from asr_gan.train.distributed import barrier
from asr_gan.train.selection import greedy_phone_ids, weighted_lm_ppl


def label_free_record(step: int, generator: Any, bank: Any, inventory: Any, lm: Any, ids: list[str] | None,
                      refs: dict[str, list[str]] | None) -> dict[str, Any]:
    """A validation record: `weighted_lm_ppl` of the generator's greedy output on `bank` and, with references, its
    PER (only reported). Without validation data or a phone LM, the step alone."""
    record: dict[str, Any] = {"step": step}
    if bank is None or lm is None:
        return record
    outputs = greedy_phone_ids(generator, bank)
    record.update({k: round(v, 5) for k, v in asdict(weighted_lm_ppl(outputs, inventory, lm)).items()})
    if refs is not None:
        from asr_gan.train.ctc_outputs import per_on_common

        hyps = {u: inventory.decode(o) for u, o in zip(ids, outputs)}
        scored = per_on_common(refs, hyps, inventory.silence)
        if scored is not None:
            record["valid_per"] = round(scored[0], 5)
    return record


class GanValidation:
    """Validation and best-checkpoint selection of `GanTrainer`; a mixin, with no state of its own."""

    def validate(self) -> dict[str, Any]:
        """Label-free metric (and PER when references were given) of the current generator."""
        return label_free_record(self.step, self.generator, self.valid_bank, self.inventory, self.lm, self.valid_ids,
                                 self.valid_refs)

    def _validate_and_save(self, bar: tqdm) -> None:
        if self.context.is_main:
            record = self.validate()
            best_path = self.out / "checkpoint_best.pt"
            # Without a validation set, the last checkpoint is also the best one; and a run that ends before
            # select_after still leaves a best checkpoint (its last) for the stages after it.
            fallback = self.step >= self.config.max_updates and not best_path.is_file()
            if self.step < self.config.select_after and not fallback:
                record["selectable"] = False  # the sweep must not pick what the run never keeps
            self._write_metrics(record)
            metric = record.get("weighted_lm_ppl")
            improved = (metric is not None and self.step >= self.config.select_after and metric < self.best_metric)
            if improved:
                self.best_metric, self.best_step = metric, self.step
            if fallback and not improved and metric is not None:
                self.best_metric, self.best_step = metric, self.step
                bar.write(f"[gan] no update after select_after={self.config.select_after} was validated: "
                          "the last checkpoint is kept as the best")
            if improved or self.valid_bank is None or fallback:
                save_checkpoint(best_path, self.state())
            save_checkpoint(self.out / "checkpoint_last.pt", self.state())
            shown = {k: record[k] for k in ("weighted_lm_ppl", "vocab_usage", "valid_per") if k in record}
            bar.write(f"[gan] update {self.step}: " + " ".join(f"{k}={v}" for k, v in shown.items())
                      + (" (best)" if improved else ""))
        barrier(self.context)
