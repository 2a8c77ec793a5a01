"""Batched, sharded, resumable frame extraction: manifest -> FeatureSet.

The manifest is cut into shards of `shard_size` utterances (in manifest order). Each shard is written as its
own FeatureSet under `<out>/shards/NNNNN/`; a shard with a meta.json is finished and is never redone, so a
killed run resumes at the first unfinished shard. Shards are dealt to ranks round-robin (`--shard i/n`, or
RANK/WORLD_SIZE from torchrun), and the process that finds every shard finished merges them into `<out>`,
applying per-speaker or global CMVN there (it needs statistics over all shards).

Throughput: CPU frontends run in worker processes; an SSL model on GPU gets padded batches from the main
process while a thread pool reads audio. Unreadable or empty audio is named in `skipped.jsonl` and skipped.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from tqdm import tqdm

from asr_gan.audio import AudioError, load_audio
from asr_gan.features.frontends import FrontendConfig, build_frontend
from asr_gan.features.normalization import Cmvn, normalize_utterance
from asr_gan.features.pipeline import NO_FRAMES, raw_frames
from asr_gan.features.storage import FeatureSet, FeatureSetWriter
from asr_gan.features.vad import VadConfig, remove_silence
from asr_gan.manifest import Utterance, read_manifest

SAMPLE_RATE = 16000


@dataclass
class ExtractConfig:
    manifest: str
    out: str
    frontend: FrontendConfig = field(default_factory=FrontendConfig)
    cmvn: str = "utterance"  # none | utterance | speaker | global
    vad: VadConfig | None = None  # None: keep the audio as it is
    dtype: str = "float32"  # float16 halves the disk and page cache for SSL features
    num_workers: int = 1  # worker processes for CPU frontends
    shard_size: int = 500
    shard: str | None = None  # "i/n": this process takes shards i, i+n, ...; None: RANK/WORLD_SIZE or all
    batch_seconds: float = 160.0  # audio per padded GPU batch for SSL models
    keep_shards: bool = False  # keep <out>/shards after merging (they double the disk use)


@dataclass
class UtteranceResult:
    utt_id: str
    frames: np.ndarray | None
    seconds: float  # audio duration before VAD
    error: str | None = None


# ------------------------------------------------------------------------------------------ per-utterance work

_WORKER: dict = {}


def _init_worker(frontend: FrontendConfig, vad: VadConfig | None, utterance_cmvn: bool) -> None:
    # One thread per worker: the workers are the parallelism, and torch's own threads would oversubscribe.
    torch.set_num_threads(1)
    _WORKER.update(frontend=build_frontend(frontend), vad=vad, utterance_cmvn=utterance_cmvn)


def _read(utt: Utterance) -> tuple[np.ndarray | None, float, str | None]:
    """(waveform, seconds, None) of an utterance's span, or (None, 0, reason) for bad input."""
    try:
        wave = load_audio(utt.audio, SAMPLE_RATE, utt.start, utt.end)
    except AudioError as err:
        return None, 0.0, str(err)
    return wave, len(wave) / SAMPLE_RATE, None


def _finish(utt: Utterance, frames: np.ndarray, seconds: float, utterance_cmvn: bool) -> UtteranceResult:
    if len(frames) == 0:
        return UtteranceResult(utt.utt_id, None, seconds, f"{utt.audio}: {NO_FRAMES}")
    if not np.isfinite(frames).all():
        return UtteranceResult(utt.utt_id, None, seconds, f"{utt.audio}: features hold NaN or inf")
    return UtteranceResult(utt.utt_id, normalize_utterance(frames) if utterance_cmvn else frames, seconds)


def _process_one(utt: Utterance) -> UtteranceResult:
    """Worker body: audio -> VAD -> frontend -> (utterance CMVN)."""
    wave, seconds, error = _read(utt)
    if error:
        return UtteranceResult(utt.utt_id, None, 0.0, error)
    frames = raw_frames(wave, _WORKER["frontend"], _WORKER["vad"])
    return _finish(utt, frames, seconds, _WORKER["utterance_cmvn"])


def _worker_pool(config: ExtractConfig):
    """Worker processes for CPU frontends, started once for all shards."""
    args = (config.frontend, config.vad, config.cmvn == "utterance")
    # spawn, not fork: a forked child of a process that has used torch threads can deadlock.
    ctx = torch.multiprocessing.get_context("spawn")
    return ctx.Pool(config.num_workers, initializer=_init_worker, initargs=args)


def _results_batched(utts: list[Utterance], config: ExtractConfig, frontend) -> Iterator[UtteranceResult]:
    """SSL on GPU: a thread pool reads audio ahead while the model runs on padded batches of similar size."""
    utterance_cmvn = config.cmvn == "utterance"

    def load(utt: Utterance):
        wave, seconds, error = _read(utt)
        if wave is not None and config.vad is not None:
            wave, _ = remove_silence(wave, config.vad)
        return utt, wave, seconds, error

    with ThreadPoolExecutor(max_workers=max(2, config.num_workers)) as readers:
        pending: list = []
        pending_seconds = 0.0

        def flush():
            batch = [p for p in pending if p[1] is not None]
            outputs = frontend.batch([p[1] for p in batch]) if batch else []
            by_id = {p[0].utt_id: out for p, out in zip(batch, outputs)}
            for utt, wave, seconds, error in pending:
                if error:
                    yield UtteranceResult(utt.utt_id, None, 0.0, error)
                else:
                    yield _finish(utt, by_id[utt.utt_id], seconds, utterance_cmvn)

        for item in readers.map(load, utts):
            pending.append(item)
            pending_seconds += item[2]
            if pending_seconds >= config.batch_seconds:
                yield from flush()
                pending, pending_seconds = [], 0.0
        yield from flush()


# ------------------------------------------------------------------------------------------------------ shards


def shard_dir(out: Path, index: int) -> Path:
    return out / "shards" / f"{index:05d}"


def shard_done(out: Path, index: int) -> bool:
    return (shard_dir(out, index) / "meta.json").is_file()


def my_shards(num_shards: int, shard: str | None) -> list[int]:
    """Shards this process takes: `--shard i/n`, else torchrun's RANK/WORLD_SIZE, else all."""
    if shard:
        try:
            rank, world = (int(v) for v in shard.split("/"))
        except ValueError:
            raise ValueError(f"--shard {shard!r}: expected i/n, e.g. 0/4") from None
    else:
        rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    if not 0 <= rank < world:
        raise ValueError(f"shard {rank}/{world}: rank must be in [0, {world})")
    return [k for k in range(num_shards) if k % world == rank]


def _write_shard(out: Path, index: int, results: Iterator[UtteranceResult], frontend, config: ExtractConfig,
                 bar) -> dict:
    directory = shard_dir(out, index)
    writer = FeatureSetWriter(directory, frontend.dim, config.dtype,
                              meta={"shard": index, "frame_rate": frontend.frame_rate})
    skipped = []
    seconds = 0.0
    for result in results:
        seconds += result.seconds
        if result.frames is None:
            skipped.append({"utt_id": result.utt_id, "error": result.error})
            tqdm.write(f"skipped {result.utt_id}: {result.error}")
        else:
            writer.add(result.utt_id, result.frames)
        bar.update(1)
        bar.audio_seconds += result.seconds
        bar.set_postfix(xRT=f"{bar.audio_seconds / max(1e-9, time.perf_counter() - bar.started):.1f}",
                        skipped=bar.skipped + len(skipped), refresh=False)
    (directory / "skipped.jsonl").write_text("".join(json.dumps(s) + "\n" for s in skipped), encoding="utf-8")
    (directory / "seconds.txt").write_text(f"{seconds}\n")
    bar.skipped += len(skipped)
    writer.close()  # meta.json last: the shard counts as done only now
    return {"skipped": len(skipped), "seconds": seconds}


# ------------------------------------------------------------------------------------------------------- merge


def _acquire_merge_lock(out: Path) -> bool:
    """One merger among ranks; a lock left by a dead process on this host is taken over."""
    lock = out / ".merge.lock"
    me = f"{socket.gethostname()} {os.getpid()}"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            host, _, pid = lock.read_text().partition(" ")
            alive = host != socket.gethostname()  # another host: assume alive
            if not alive:
                try:
                    os.kill(int(pid), 0)
                    alive = True
                except (OSError, ValueError):
                    alive = False
            if alive:
                return False
            lock.unlink(missing_ok=True)
            continue
        os.write(fd, me.encode())
        os.close(fd)
        return True
    return False


def merge_shards(config: ExtractConfig, utts: list[Utterance] | None = None) -> dict:
    """Join finished shards into `<out>`, fitting and applying speaker/global CMVN. Returns the summary."""
    out = Path(config.out)
    utts = utts if utts is not None else read_manifest(config.manifest)
    num_shards = (len(utts) + config.shard_size - 1) // config.shard_size
    missing = [k for k in range(num_shards) if not shard_done(out, k)]
    if missing:
        raise RuntimeError(f"{out}: shards {missing[:10]} unfinished; run extraction for them before merging")
    shards = [FeatureSet(shard_dir(out, k)) for k in range(num_shards)]
    speaker_of = {u.utt_id: u.speaker for u in utts}

    def each_utterance():
        for fs in shards:
            for i, utt_id in enumerate(fs.utt_ids):
                yield utt_id, fs[i]

    cmvn = Cmvn.fit(config.cmvn, ((speaker_of[u], np.asarray(x, dtype=np.float32)) for u, x in each_utterance()))
    dim = shards[0].dim if shards else 0
    skipped = [json.loads(line) for k in range(num_shards)
               for line in (shard_dir(out, k) / "skipped.jsonl").read_text().splitlines() if line]
    seconds = sum(float((shard_dir(out, k) / "seconds.txt").read_text()) for k in range(num_shards))
    meta = {
        "frontend": config.frontend.to_dict(),
        "vad": config.vad.to_dict() if config.vad else None,
        "cmvn": config.cmvn,
        "manifest": str(config.manifest),
        "frame_rate": shards[0].meta.get("frame_rate") if shards else build_frame_rate(config.frontend),
        "num_skipped": len(skipped),
        "audio_seconds": seconds,
    }
    writer = FeatureSetWriter(out, dim, config.dtype, meta=meta)
    # Utterance CMVN was applied in the workers; speaker/global statistics only exist now.
    apply = cmvn if config.cmvn in ("speaker", "global") else None
    for utt_id, frames in tqdm(each_utterance(), total=sum(len(s) for s in shards), desc="merge", unit="utt"):
        writer.add(utt_id, apply(np.asarray(frames, dtype=np.float32), speaker_of[utt_id]) if apply else frames)
    if apply:
        cmvn.save(out / "cmvn.npz")
    (out / "skipped.jsonl").write_text("".join(json.dumps(s) + "\n" for s in skipped), encoding="utf-8")
    feature_set = writer.close()
    if not config.keep_shards:
        shutil.rmtree(out / "shards", ignore_errors=True)
    return {"utterances": len(feature_set), "skipped": len(skipped), "frames": int(feature_set.lengths.sum()),
            "audio_hours": seconds / 3600}


def build_frame_rate(frontend: FrontendConfig) -> float:
    """Frames per second of a frontend, without loading an SSL model (its conv stride is 320 samples) or the
    phone encoder (its stem halves the log-mel rate)."""
    if frontend.kind == "ssl":
        return SAMPLE_RATE / 320
    return 1000.0 / frontend.frame_shift_ms / (2 if frontend.kind == "encoder" else 1)


# --------------------------------------------------------------------------------------------------------- run


class SettingsMismatch(ValueError):
    """An output folder holds features (or shards) made with other settings than the ones asked for."""


def _settings(frontend: dict, vad: dict | None, cmvn: str, dtype: str, manifest: str) -> dict:
    """What decides the stored values. The device does not (a CUDA and a CPU run of one model agree)."""
    return {"frontend": {k: v for k, v in frontend.items() if k != "device"}, "vad": vad, "cmvn": cmvn,
            "dtype": dtype, "manifest": str(Path(manifest).resolve())}


def _requested_settings(config: ExtractConfig) -> dict:
    return json.loads(json.dumps(_settings(config.frontend.to_dict(), config.vad.to_dict() if config.vad else None,
                                           config.cmvn, config.dtype, config.manifest), default=str))


def _check_same_settings(out: Path, stored: dict, wanted: dict, what: str) -> None:
    differ = [f"{key}: {stored.get(key)!r} there, {wanted[key]!r} asked" for key in wanted
              if stored.get(key) != wanted[key]]
    if differ:
        raise SettingsMismatch(f"{out}: {what} with other settings ({'; '.join(differ)}); delete the folder "
                               "to redo it, or choose another --out")


def extract(config: ExtractConfig) -> dict:
    """Extract this process's shards, then merge if every shard is finished. Returns a summary dict.

    A finished `out` is reused, and an unfinished one resumed, only when it was made with the same frontend,
    VAD, CMVN, dtype and manifest (and, for shards, shard size); otherwise `SettingsMismatch` says what differs.
    """
    out = Path(config.out)
    wanted = _requested_settings(config)
    if (out / "meta.json").is_file():
        fs = FeatureSet(out)
        meta = fs.meta
        if "frontend" in meta:  # feature sets written by `extract` (imported ones carry other metadata)
            stored = _settings(meta["frontend"], meta.get("vad"), meta.get("cmvn"), meta.get("dtype"),
                               meta.get("manifest", ""))
            _check_same_settings(out, stored, wanted, "already extracted")
        print(f"{out}: already extracted ({len(fs)} utterances); delete it to redo")
        return {"utterances": len(fs), "skipped": fs.meta.get("num_skipped", 0), "already_done": True}
    saved = out / "extract_config.json"
    if saved.is_file():
        data = json.loads(saved.read_text())
        stored = {**_settings(data["frontend"], data.get("vad"), data["cmvn"], data["dtype"], data["manifest"]),
                  "shard_size": data["shard_size"]}
        _check_same_settings(out, stored, {**wanted, "shard_size": config.shard_size}, "half extracted")
    utts = read_manifest(config.manifest)
    if not utts:
        raise ValueError(f"{config.manifest}: empty manifest")
    out.mkdir(parents=True, exist_ok=True)
    (out / "extract_config.json").write_text(json.dumps(asdict(config), indent=2, default=str))
    num_shards = (len(utts) + config.shard_size - 1) // config.shard_size
    mine = [k for k in my_shards(num_shards, config.shard) if not shard_done(out, k)]
    todo = sum(len(utts[k * config.shard_size : (k + 1) * config.shard_size]) for k in mine)

    started = time.perf_counter()
    if mine:
        # Worker processes build their own frontend; in-process paths share this one (SSL models load once).
        frontend = build_frontend(config.frontend)
        batched = config.frontend.kind == "ssl" and frontend.device.type == "cuda"
        in_process = batched or config.num_workers <= 1
        if in_process:
            _WORKER.update(frontend=frontend, vad=config.vad, utterance_cmvn=config.cmvn == "utterance")
        bar = tqdm(total=todo, desc=f"extract {out.name}", unit="utt")
        bar.audio_seconds, bar.started, bar.skipped = 0.0, started, 0
        with contextlib.ExitStack() as stack:
            pool = None if in_process else stack.enter_context(_worker_pool(config))
            for k in mine:
                shard_utts = utts[k * config.shard_size : (k + 1) * config.shard_size]
                if batched:
                    results = _results_batched(shard_utts, config, frontend)
                elif in_process:
                    results = map(_process_one, shard_utts)
                else:
                    results = pool.imap(_process_one, shard_utts, chunksize=4)
                _write_shard(out, k, results, frontend, config, bar)
        bar.close()
        elapsed = time.perf_counter() - started
        print(f"{out}: {todo} utterances in {elapsed:.1f} s ({todo / max(elapsed, 1e-9):.1f} utt/s, "
              f"{bar.audio_seconds / max(elapsed, 1e-9):.1f}x real time), {bar.skipped} skipped")

    if all(shard_done(out, k) for k in range(num_shards)):
        if not _acquire_merge_lock(out):
            print(f"{out}: another process is merging")
            return {"merged": False}
        try:
            summary = merge_shards(config, utts)
        finally:
            (out / ".merge.lock").unlink(missing_ok=True)
        summary["seconds"] = time.perf_counter() - started
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        print(f"{out}: {summary['utterances']} utterances, {summary['frames']} frames, "
              f"{summary['skipped']} skipped, {summary['audio_hours']:.3f} h of audio")
        return summary
    left = [k for k in range(num_shards) if not shard_done(out, k)]
    print(f"{out}: {len(left)} of {num_shards} shards still to do (other ranks); the last to finish merges")
    return {"merged": False, "shards_left": len(left)}
