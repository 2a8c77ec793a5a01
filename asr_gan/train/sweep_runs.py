"""Launching a sweep's runs: one training subprocess per run in worker slots (dealt over the GPUs when there
are any, the CPU threads split between them), skipping runs that already finished."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml
from tqdm import tqdm

from asr_gan.train.sweep_plan import RunSpec, SweepConfig, apply_overrides


def worker_slots(parallel: int, gpus: int | None = None) -> list[dict[str, str]]:
    """Environment of each concurrent worker.

    With GPUs there are max(`parallel`, GPUs) workers, dealt round-robin over the GPUs: `--parallel 4` on one
    GPU runs four runs on it at once (a wav2vec-U-size run uses a small part of an H100). Without a GPU,
    `parallel` CPU workers share the cores. Either way each worker gets its share of the CPU threads.
    """
    if gpus is None:
        try:
            import torch

            gpus = torch.cuda.device_count()
        except Exception:  # torch missing or CUDA broken: fall back to CPU workers
            gpus = 0
    workers = max(1, parallel, gpus)
    # Without this each process would start one thread per core and they would fight over the cores.
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    return [{"CUDA_VISIBLE_DEVICES": str(n % gpus) if gpus else "", "OMP_NUM_THREADS": threads,
             "MKL_NUM_THREADS": threads} for n in range(workers)]


def _finished(run_dir: Path) -> bool:
    status = run_dir / "sweep_status.json"
    return status.is_file() and json.loads(status.read_text()).get("returncode") == 0


def launch_runs(specs: list[RunSpec], base_config: dict[str, Any], config: SweepConfig) -> dict[str, int]:
    """Run every spec (skipping finished ones unless forced); returns {name: return code}. Never raises on a
    failed run: its return code and log (`<run>/train.log`) are kept for the report."""
    out = Path(config.out)
    pending = []
    codes: dict[str, int] = {}
    for spec in specs:
        run_dir = out / spec.name
        if _finished(run_dir) and not config.force:
            codes[spec.name] = 0
            continue
        run_dir.mkdir(parents=True, exist_ok=True)
        run_config = apply_overrides(base_config, {**spec.overrides, config.seed_key: spec.seed})
        (run_dir / "sweep_config.yaml").write_text(yaml.safe_dump(run_config, sort_keys=False))
        pending.append(spec)
    if len(codes):
        print(f"[sweep] {len(codes)} runs already finished, skipped (--force to rerun)")
    slots = worker_slots(config.parallel)
    free = list(range(len(slots)))
    running: dict[int, tuple[RunSpec, subprocess.Popen, Any]] = {}
    with tqdm(total=len(pending), desc="[sweep] runs", unit="run") as bar:
        while pending or running:
            while pending and free:
                spec, slot = pending.pop(0), free.pop(0)
                run_dir = out / spec.name
                command = config.train_command.format(config=shlex.quote(str(run_dir / "sweep_config.yaml")),
                                                      out=shlex.quote(str(run_dir)))
                log = open(run_dir / "train.log", "w")
                process = subprocess.Popen(shlex.split(command), stdout=log, stderr=subprocess.STDOUT,
                                           env={**os.environ, **slots[slot]})
                running[slot] = (spec, process, log)
            time.sleep(0.2)
            for slot, (spec, process, log) in list(running.items()):
                if process.poll() is None:
                    continue
                log.close()
                codes[spec.name] = process.returncode
                (out / spec.name / "sweep_status.json").write_text(json.dumps({"returncode": process.returncode}))
                if process.returncode != 0:
                    tqdm.write(f"[sweep] {spec.name} failed (rc {process.returncode}); see "
                               f"{out / spec.name / 'train.log'}")
                del running[slot]
                free.append(slot)
                bar.update(1)
    return codes
